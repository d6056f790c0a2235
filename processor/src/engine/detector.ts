/**
 * The detector: the engine's one entry point. Feed it decoded batches in any order; call `detect()` to
 * learn what changed: deadlocks opened, deadlocks resolved (including ones a timeout broke before anyone
 * looked), and lock-order inversions.
 *
 * Pure code: no clock reads, no I/O. The caller passes the time it observed each batch at (for the
 * staleness rule) and calls `expire()` with its clock.
 */
import type { Finding } from '../../../schemas/index.js';
import { WaitgraphError } from '../errors.js';
import type { DecodedBatch, LogEventRecord, SpanRecord } from '../model/span.js';
import { detect, victimsOf, type Core } from './detect.js';
import { coreFingerprint, deadlockFinding, formedAt, inversionFinding, type FindingOptions } from './findings.js';
import { NOW, OPEN, taskKey, type OrderEdge, type SpanNode, type TaskNode, type WaitIv } from './model.js';
import { SpanLog } from './span-log.js';
import { GraphStore, type Touched } from './store.js';

/** Options of the detector. Every field is optional. */
export interface DetectorOptions {
  /** Base URL of the Jaeger UI, for links. Default: `http://localhost:16686`. */
  jaegerUrl?: string;
  /** Service names whose spans are proxy hops, besides spans with `component = proxy`. Default: none. */
  proxyServices?: readonly string[];
  /** Most victims listed in a finding (all are counted). Default: 100. */
  maxVictims?: number;
}

/** A change of a finding, as `detect()` reports it. */
export interface FindingChange {
  /** `opened`: a deadlock is active; `resolved`: it was broken; `potential`: a lock-order inversion was seen. */
  change: 'opened' | 'resolved' | 'potential';
  finding: Finding;
}

/** Sizes of the live graph. */
export interface DetectorStats {
  spans: number;
  tasks: number;
  openWaits: number;
  openHolds: number;
  activeDeadlocks: number;
}

interface ActiveEntry {
  finding: Finding;
  tasks: TaskNode[];
  /** The core's waits when it was found, to tell later what broke it. */
  waits: { task: TaskNode; kind: string; res: string; start: number }[];
  formed: number;
}

function conflicts(a: string, b: string): boolean {
  return a === 'exclusive' || b === 'exclusive';
}

/** The incremental deadlock detector. */
export class Detector {
  private readonly store: GraphStore;
  private readonly opts: FindingOptions;
  private readonly maxVictims: number;
  private touched: Touched = { tasks: new Set(), timeouts: [], orderPairs: new Set(), eased: new Set() };
  private readonly active = new Map<string, ActiveEntry>();
  private readonly activeByTask = new Map<TaskNode, Set<string>>();
  private readonly resolved: Finding[] = [];
  private readonly resolvedKeys = new Set<string>();
  private readonly potentials = new Map<string, Finding>();
  /** Timeouts already looked behind, with the time each happened, until they pass out of the history. */
  private readonly seenTimeouts = new Map<string, number>();
  /** The start of the history the live graph keeps (see `forget`); views before it are not looked at. */
  private horizon = Number.NEGATIVE_INFINITY;
  /** Open spans in the order they were last observed, for the staleness sweep. */
  private readonly liveness = new SpanLog();

  constructor(options: DetectorOptions = {}) {
    const jaegerUrl = options.jaegerUrl ?? 'http://localhost:16686';
    if (!/^https?:\/\/[^\s]+$/.test(jaegerUrl)) {
      throw new WaitgraphError('bad-config', `jaegerUrl must be an http(s) URL, got "${jaegerUrl}"`);
    }
    const maxVictims = options.maxVictims ?? 100;
    if (!Number.isInteger(maxVictims) || maxVictims < 0) {
      throw new WaitgraphError('bad-config', `maxVictims must be a whole number >= 0, got ${maxVictims}`);
    }
    this.opts = { jaegerUrl: jaegerUrl.replace(/\/+$/, '') };
    this.maxVictims = maxVictims;
    this.store = new GraphStore(options.proxyServices ?? []);
  }

  /** Adds a decoded batch. `observedAt` is the caller's clock (unix ns) for the staleness rule. */
  addBatch(batch: DecodedBatch, observedAt = 0): void {
    this.addSpans(batch.spans, observedAt);
    this.addLogEvents(batch.logEvents, observedAt);
  }

  /** Adds spans or partial-span snapshots, in any order, duplicates allowed. */
  addSpans(spans: readonly SpanRecord[], observedAt = 0): void {
    for (const s of spans) {
      const node = this.store.addSpan(s, observedAt, this.touched);
      if (observedAt > 0) {
        if (node.end === OPEN) this.liveness.push(node, node.observedAt);
        else this.store.retire(node, node.end);
      }
    }
  }

  /** Adds wait events that arrived as OTLP log records. */
  addLogEvents(events: readonly LogEventRecord[], observedAt = 0): void {
    for (const e of events) {
      const node = this.store.addLogEvent(e, observedAt, this.touched);
      if (node !== undefined && observedAt > 0 && node.end === OPEN) this.liveness.push(node, node.observedAt);
    }
  }

  /**
   * The staleness rule: an open span whose last snapshot is older than `now - staleAfter` (unix ns) is no
   * longer trusted, and its waits and holds leave the graph until a fresh snapshot comes. Returns how many
   * spans went stale.
   */
  expire(now: number, staleAfter: number): number {
    const cutoff = now - staleAfter;
    let n = 0;
    for (let at = this.liveness.oldestAt(); at !== undefined && at < cutoff; at = this.liveness.oldestAt()) {
      const span = this.liveness.shift();
      const current = this.store.spans.get(span.traceId, span.spanId);
      if (current !== span || span.end !== OPEN || span.observedAt !== at || span.stale) continue;
      this.store.setStale(span, true, this.touched);
      this.store.retire(span, span.observedAt);
      n++;
    }
    return n;
  }

  /**
   * Keeps the history of a live graph bounded: forgets spans that ended (or went stale) before `cutoff`
   * (unix ns; the caller's clock minus the history it keeps), where nothing in the views from `cutoff` on
   * can need them (the rule is on `GraphStore.forget`), and the timeouts seen before it. Deadlocks that
   * timeouts broke before `cutoff` are no longer looked for. Lock-order edges stay, so inversions are found
   * across any span of time. Only for spans added with an `observedAt` (the live processor): `analyze`
   * never forgets. With more than `maxSpans` spans in the graph, the oldest go too, as if `cutoff` were
   * later (see `historyStart`). Returns how many spans were forgotten.
   */
  forget(cutoff: number, maxSpans = Number.POSITIVE_INFINITY): number {
    const { forgotten, cutoff: inEffect } = this.store.forget(cutoff, this.touched, maxSpans);
    if (inEffect > this.horizon) this.horizon = inEffect;
    for (const [key, at] of this.seenTimeouts) if (at < this.horizon) this.seenTimeouts.delete(key);
    return forgotten;
  }

  /** The start of the history the graph keeps (unix ns; see `forget`), or -Infinity while it keeps all. */
  get historyStart(): number {
    return this.horizon;
  }

  /** Runs detection over what changed since the last call and returns the changes of findings. */
  detect(): FindingChange[] {
    this.store.flush(this.touched);
    const { tasks: touchedTasks, timeouts, orderPairs, eased } = this.touched;
    this.touched = { tasks: new Set(), timeouts: [], orderPairs: new Set(), eased: new Set() };
    const changes: FindingChange[] = [];

    // Deadlocks that a timeout broke: look just before the timeout, from the task that gave up.
    const broken = new Set<string>();
    for (const w of timeouts) {
      if (w.end < this.horizon) continue; // before the history: what it needs may be forgotten
      const key = `${taskKey(w.task)}\0${w.kind}\0${w.res}\0${w.start}\0${w.end}`;
      if (this.seenTimeouts.has(key)) continue;
      this.seenTimeouts.set(key, w.end);
      for (const core of detect(this.store, [w.task], w.end).cores) {
        if (!core.tasks.includes(w.task)) continue; // the timeout only freed a victim
        const fp = coreFingerprint(core);
        const rkey = fp + '\0' + formedAt(core);
        if (this.resolvedKeys.has(rkey)) continue;
        this.resolvedKeys.add(rkey);
        const victims = victimsOf(this.store, core, w.end);
        const f = deadlockFinding(
          core,
          {
            state: 'resolved',
            t: w.end,
            victims: victims.slice(0, this.maxVictims),
            victimCount: victims.length,
            brokenBy: { event: w.endedBy!, task: w.task, span: w.span, at: w.end },
          },
          this.opts,
        );
        this.resolved.push(f);
        broken.add(fp);
        if (this.active.has(fp)) this.close(fp);
        changes.push({ change: 'resolved', finding: f });
      }
    }

    // Active deadlocks: from every task that changed, and from the cores of open findings they touch.
    const seeds = touchedTasks; // ours now: a fresh set took its place
    const recheck = new Set<string>();
    for (const t of touchedTasks) for (const fp of this.activeByTask.get(t) ?? []) recheck.add(fp);
    for (const t of eased) for (const fp of this.activeByTask.get(t) ?? []) recheck.add(fp);
    for (const fp of recheck) for (const t of this.active.get(fp)!.tasks) seeds.add(t);
    const found = new Set<string>();
    if (seeds.size) {
      for (const core of detect(this.store, seeds, NOW).cores) {
        const fp = coreFingerprint(core);
        found.add(fp);
        if (this.active.has(fp)) {
          this.refresh(fp, core);
          continue;
        }
        // A core that shares tasks with an open one is that deadlock seen more fully (late spans joined
        // it): it keeps its fingerprint and is not announced again.
        const grown = this.openSharing(core);
        if (grown !== undefined) {
          found.add(grown);
          this.refresh(grown, core);
          continue;
        }
        if (broken.has(fp)) continue;
        const f = this.build(core);
        this.open(fp, core, f);
        changes.push({ change: 'opened', finding: f });
      }
    }
    for (const fp of recheck) {
      if (found.has(fp) || !this.active.has(fp)) continue;
      const entry = this.active.get(fp)!;
      this.close(fp);
      const f = this.resolvedFrom(entry);
      const rkey = fp + '\0' + entry.formed;
      if (this.resolvedKeys.has(rkey)) continue;
      this.resolvedKeys.add(rkey);
      this.resolved.push(f);
      changes.push({ change: 'resolved', finding: f });
    }

    // Lock-order inversions, unless a deadlock over the same two locks was already reported.
    for (const pair of orderPairs) {
      if (this.potentials.has(pair)) continue;
      const [x, y] = pair.split('\0');
      const inv = this.inversion(x, y) ?? this.inversion(y, x);
      if (!inv) continue;
      const covered = [...this.active.values()].some((e) => e.finding.resources.includes(x) && e.finding.resources.includes(y)) ||
        this.resolved.some((f) => f.resources.includes(x) && f.resources.includes(y));
      if (covered) continue;
      const f = inversionFinding(inv[0], inv[1], this.opts);
      this.potentials.set(pair, f);
      changes.push({ change: 'potential', finding: f });
    }
    return changes;
  }

  /** Every finding: active deadlocks, then resolved ones, then potential deadlocks. */
  findings(): Finding[] {
    const byFp = (a: Finding, b: Finding) => (a.fingerprint < b.fingerprint ? -1 : a.fingerprint > b.fingerprint ? 1 : 0);
    const active = [...this.active.values()].map((e) => e.finding).sort(byFp);
    const resolved = [...this.resolved].sort((a, b) => a.formedAt!.localeCompare(b.formedAt!) || byFp(a, b));
    const potential = [...this.potentials.values()]
      .filter((p) => !this.resolved.some((f) => p.resources.every((r) => f.resources.includes(r))))
      .sort(byFp);
    return [...active, ...resolved, ...potential];
  }

  /** Sizes of the live graph. */
  stats(): DetectorStats {
    this.store.flush(this.touched);
    const s = this.store;
    return { spans: s.spans.size, tasks: s.taskCount, openWaits: s.openWaits, openHolds: s.openHolds, activeDeadlocks: this.active.size };
  }

  private build(core: Core, victims = victimsOf(this.store, core, NOW)): Finding {
    return deadlockFinding(
      core,
      { state: 'active', t: NOW, victims: victims.slice(0, this.maxVictims), victimCount: victims.length },
      this.opts,
    );
  }

  private open(fp: string, core: Core, finding: Finding): void {
    const waits: ActiveEntry['waits'] = [];
    for (const [task, reqs] of core.reqs) for (const r of reqs) if (r.wait) waits.push({ task, kind: r.wait.kind, res: r.wait.res, start: r.wait.start });
    this.active.set(fp, { finding, tasks: core.tasks, waits, formed: formedAt(core) });
    for (const t of core.tasks) {
      let s = this.activeByTask.get(t);
      if (!s) this.activeByTask.set(t, (s = new Set()));
      s.add(fp);
    }
  }

  private refresh(fp: string, core: Core): void {
    const entry = this.active.get(fp)!;
    const same = entry.tasks.length === core.tasks.length && entry.tasks.every((t, i) => t === core.tasks[i]);
    // Tasks that came to wait behind it since are its victims too (nothing is announced for them).
    const victims = victimsOf(this.store, core, NOW);
    if (same && entry.finding.victims?.count === victims.length) return;
    // Still the same incident: its fingerprint and the time it formed stay.
    const f = this.build(core, victims);
    f.fingerprint = fp;
    f.formedAt = entry.finding.formedAt;
    this.close(fp);
    this.open(fp, core, f);
    this.active.get(fp)!.formed = entry.formed;
  }

  private close(fp: string): void {
    const entry = this.active.get(fp);
    if (!entry) return;
    this.active.delete(fp);
    for (const t of entry.tasks) {
      const s = this.activeByTask.get(t);
      s?.delete(fp);
      if (s && s.size === 0) this.activeByTask.delete(t);
    }
  }

  /** The resolved form of an active finding that is no longer found: what ended one of its waits. */
  private resolvedFrom(entry: ActiveEntry): Finding {
    // What broke it: of the waits its tasks had open when it formed, the first to end (a timeout before
    // anything else that ended at the same moment, such as the acquire the timeout let through).
    let best: { w: WaitIv; task: TaskNode } | undefined;
    for (const task of entry.tasks) {
      for (let w = task.waits; w !== undefined; w = w.next) {
        if (w.end === OPEN || w.start > entry.formed || w.end < entry.formed) continue;
        const earlier = !best || w.end < best.w.end || (w.end === best.w.end && w.timedOut && !best.w.timedOut);
        if (earlier) best = { w, task };
      }
    }
    const f: Finding = structuredClone(entry.finding);
    f.state = 'resolved';
    const first = entry.tasks[0];
    // The task may have lost its spans since (a newer version named another task): its finding still
    // names the span it was found in.
    const shown = entry.finding.tasks.find((x) => x.key === taskKey(first))!;
    const span = best?.w.span ?? (first.spanCount ? first.spanAt(0) : undefined) ?? { traceId: shown.traceId, spanId: shown.spanId };
    const at = best?.w.end ?? entry.formed;
    f.resolvedAt = new Date(Math.floor(at / 1e6)).toISOString();
    f.durationMs = Math.max(0, Math.round((at - entry.formed) / 1e3) / 1e3);
    f.brokenBy = {
      event: best?.w.endedBy ?? 'span.stale',
      task: {
        service: (best?.task ?? first).service,
        taskId: (best?.task ?? first).taskId,
        traceId: span.traceId,
        spanId: span.spanId,
        ...((best?.task ?? first).instanceId !== undefined ? { serviceInstance: (best?.task ?? first).instanceId } : {}),
      },
      at: f.resolvedAt,
    };
    f.summary = f.summary.replace(/^Deadlock:/, 'Deadlock (broken):');
    return f;
  }

  /** The fingerprint of an open deadlock that shares a task with `core`, if any. */
  private openSharing(core: Core): string | undefined {
    for (const t of core.tasks) {
      const fps = this.activeByTask.get(t);
      if (fps !== undefined) for (const fp of fps) return fp;
    }
    return undefined;
  }

  /** A pair of tasks that took `x` then `y`, and `y` then `x`, in modes that conflict, with no common gate. */
  private inversion(x: string, y: string): [OrderEdge, OrderEdge] | undefined {
    const xy = this.store.orderEdges(x, y);
    const yx = this.store.orderEdges(y, x);
    for (const a of xy) {
      for (const b of yx) {
        // By key: a forgotten span's edge keeps its task, which may since have been made anew.
        if (a.task === b.task || taskKey(a.task) === taskKey(b.task)) continue;
        if (!conflicts(a.firstMode, b.thenMode) || !conflicts(a.thenMode, b.firstMode)) continue;
        if (a.gates.some((g) => b.gates.includes(g))) continue;
        return a.time <= b.time ? [a, b] : [b, a];
      }
    }
    return undefined;
  }
}
