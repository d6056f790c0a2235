/**
 * Turns detected cores and lock-order inversions into findings: the tasks with what they wait for and
 * hold, the resources and services, Jaeger links for every span involved, a stable fingerprint, and a
 * plain-language chain in the manner of PostgreSQL's deadlock report.
 */
import { createHash } from 'node:crypto';
import type { Finding, FindingTask, Hold, Link, TaskRef, Wait } from '../../../schemas/index.js';
import type { Core } from './detect.js';
import { activeAt, byTaskKey, taskKey, type HoldIv, type OrderEdge, type SpanNode, type TaskNode, type WaitIv } from './model.js';
import { ownerAt, type Req } from './requirements.js';

/** Options of the finding builder. */
export interface FindingOptions {
  /** Base URL of the Jaeger UI. */
  jaegerUrl: string;
}

/** Nanoseconds to an RFC 3339 time. */
export function iso(ns: number): string {
  return new Date(Math.floor(ns / 1e6)).toISOString();
}

function hash(parts: string[]): string {
  return createHash('sha256').update(parts.join('\n')).digest('hex').slice(0, 16);
}

function label(t: TaskNode): string {
  return `${t.instance}:${t.taskId}`;
}

/** The span that best shows a task in the view at `t`: its blocking wait, else its newest open span. */
function spanOf(task: TaskNode, reqs: Req[] | undefined, t: number): SpanNode {
  for (const r of reqs ?? []) {
    if (r.wait) return r.wait.span;
    if (r.parent) return r.parent;
  }
  let best: SpanNode | undefined;
  for (let i = 0, n = task.spanCount; i < n; i++) {
    const s = task.spanAt(i);
    if (s.task !== task) continue;
    if (activeAt(s.start, s.end, t) && (!best || s.start > best.start)) best = s;
  }
  return best ?? task.spanAt(0);
}

function taskRef(task: TaskNode, span: SpanNode): TaskRef {
  const ref: TaskRef = { service: task.service, taskId: task.taskId, traceId: span.traceId, spanId: span.spanId };
  if (task.instanceId !== undefined) ref.serviceInstance = task.instanceId;
  if (span.name) ref.spanName = span.name;
  return ref;
}

function waitOf(w: WaitIv, on: TaskNode[]): Wait {
  const out: Wait = { kind: w.kind, since: iso(w.start), spanId: w.span.spanId };
  if (w.res) out.resource = w.res;
  if (w.kind === 'lock' || w.kind === 'task') out.mode = w.mode;
  if (on.length) out.on = on.map((x) => taskKey(x));
  return out;
}

/** Earlier first; at the same time, by resource. */
const byStart = (a: { start: number }, ak: string, b: { start: number }, bk: string): number => a.start - b.start || (ak < bk ? -1 : ak > bk ? 1 : 0);

/**
 * The holds a task has in the view at `t`, its own and those handed over to it, in the order they were
 * taken (then by resource): not in the order they arrived, which the findings must not depend on.
 */
function heldBy(task: TaskNode, t: number): HoldIv[] {
  const out: HoldIv[] = [];
  for (let h = task.holds; h !== undefined; h = h.next) if (activeAt(h.start, h.end, t) && ownerAt(h, t) === task) out.push(h);
  for (const h of task.inherited) if (activeAt(h.start, h.end, t) && ownerAt(h, t) === task) out.push(h);
  return out.sort((a, b) => byStart(a, a.kind + '\0' + a.res, b, b.kind + '\0' + b.res));
}

function holdsOf(task: TaskNode, t: number): Hold[] {
  const byRes = new Map<string, Hold>();
  for (const h of heldBy(task, t)) {
    const k = h.kind + '\0' + h.res;
    const prev = byRes.get(k);
    if (prev) {
      prev.count = (prev.count ?? 1) + 1;
      continue;
    }
    const out: Hold = { kind: h.kind, resource: h.res, since: iso(h.start) };
    if (h.kind === 'lock') out.mode = h.mode;
    else out.count = 1;
    byRes.set(k, out);
  }
  const issues = task.issues.filter((i) => activeAt(i.start, i.end, t)).sort((a, b) => byStart(a, a.cert, b, b.cert));
  for (const i of issues) {
    const k = 'cert\0' + i.cert;
    if (!byRes.has(k)) byRes.set(k, { kind: 'cert', resource: i.cert, since: iso(i.start) });
  }
  return [...byRes.values()];
}

/** One plain-language line for a task's blocking requirement. */
function describe(task: TaskNode, r: Req, t: number): string {
  const who = r.targets.map(label);
  const blocked = r.all || who.length === 1 ? `blocked by ${who.join(', ')}` : `blocked by any of ${who.join(', ')}`;
  const w = r.wait;
  if (!w) {
    const c = r.child!;
    return `Task ${label(task)} waits for its ${c.task.service === task.service ? 'child span' : `call into ${c.task.service}`} "${c.name}" (span ${c.spanId}); ${blocked}.`;
  }
  switch (w.kind) {
    case 'lock':
      return `Task ${label(task)} waits for ${w.mode} lock "${w.res}"; ${blocked}${who.includes(label(task)) ? ' (it holds the lock itself)' : ''}.`;
    case 'pool':
      return `Task ${label(task)} waits for a unit of pool "${w.res}"${w.size ? ` (size ${w.size}, all in use)` : ''}; ${blocked}.`;
    case 'rpc':
      return `Task ${label(task)} waits for a reply whose request waits for a worker of "${w.res}"; ${blocked}.`;
    case 'cert':
      return `Task ${label(task)} waits for certificate "${w.res}"; ${blocked}.`;
    case 'task':
      return `Task ${label(task)} waits for ${w.mode === 'any' ? 'any' : 'all'} of ${w.on!.join(', ')}; ${blocked}.`;
  }
  void t;
  return '';
}

/** The core's tasks in the order of a walk along its edges, so a cycle reads as a cycle. */
function walkOrder(core: Core): TaskNode[] {
  const out: TaskNode[] = [];
  const seen = new Set<TaskNode>();
  const visit = (n: TaskNode) => {
    while (n && !seen.has(n)) {
      seen.add(n);
      out.push(n);
      const next = (core.reqs.get(n) ?? []).flatMap((r) => r.targets).find((x) => !seen.has(x));
      if (!next) break;
      n = next;
    }
  };
  for (const n of core.tasks) visit(n);
  return out;
}

/**
 * The fingerprint of a deadlock core: its tasks (service instance and task id) and resources. The same
 * deadlock seen again (replayed, re-read after a restart, in another order) gets the same one; two
 * deadlocks of the same shape among different tasks get different ones.
 */
export function coreFingerprint(core: Core): string {
  return hash(['deadlock', ...core.tasks.map(taskKey).sort(), '', ...coreResources(core)]);
}

/** Resources on the core's edges. */
function coreResources(core: Core): string[] {
  const out = new Set<string>();
  for (const reqs of core.reqs.values()) for (const r of reqs) if (r.wait?.res) out.add(r.wait.res);
  return [...out].sort();
}

/** When the last edge of the core formed. */
export function formedAt(core: Core): number {
  let max = 0;
  for (const reqs of core.reqs.values()) for (const r of reqs) for (const s of r.since) if (s > max) max = s;
  return max;
}

class LinkSet {
  readonly links: Link[] = [];
  private readonly seen = new Set<string>();
  constructor(private readonly base: string) {}
  add(span: SpanNode): void {
    const k = span.traceId + span.spanId;
    if (this.seen.has(k)) return;
    this.seen.add(k);
    this.links.push({
      traceId: span.traceId,
      spanId: span.spanId,
      url: `${this.base}/trace/${span.traceId}?uiFind=${span.spanId}`,
    });
  }
}

/**
 * The order of a task's requirements in a finding: its waits, then the child spans it waits for, each by
 * when it began, then by what it names. Not the order the spans arrived in (children are found in their
 * trace in arrival order), which the finding must not depend on.
 */
function byRequirement(a: Req, b: Req): number {
  if ((a.wait === undefined) !== (b.wait === undefined)) return a.wait ? -1 : 1;
  const start = (r: Req) => (r.wait ? r.wait.start : r.child!.start);
  const name = (r: Req) => (r.wait ? `${r.wait.kind}\0${r.wait.res ?? ''}\0${r.wait.span.spanId}` : r.child!.spanId);
  const ka = name(a);
  const kb = name(b);
  return start(a) - start(b) || (ka < kb ? -1 : ka > kb ? 1 : 0);
}

/**
 * The core with each task's requirements in `byRequirement` order and each requirement's targets in
 * task-key order, so the finding reads the same whatever the input order.
 */
function sortedCore(core: Core): Core {
  const reqs = new Map<TaskNode, Req[]>();
  for (const [task, list] of core.reqs) {
    reqs.set(
      task,
      list
        .map((r) => {
          const idx = r.targets.map((_, i) => i).sort((a, b) => byTaskKey(r.targets[a], r.targets[b]));
          return { ...r, targets: idx.map((i) => r.targets[i]), since: idx.map((i) => r.since[i]) };
        })
        .sort(byRequirement),
    );
  }
  return { tasks: core.tasks, reqs };
}

/** What the finding builder needs to know beyond the core. */
export interface DeadlockContext {
  state: 'active' | 'resolved';
  /** The view the core was found in (NOW for active ones; the breaking time for resolved ones). */
  t: number;
  victims: TaskNode[];
  victimCount: number;
  brokenBy?: { event: string; task: TaskNode; span: SpanNode; at: number };
}

/** Builds the finding for one deadlock core. */
export function deadlockFinding(unsorted: Core, ctx: DeadlockContext, opts: FindingOptions): Finding {
  const core = sortedCore(unsorted);
  const order = walkOrder(core);
  const links = new LinkSet(opts.jaegerUrl);
  const tasks: FindingTask[] = [];
  const chain: string[] = [];
  for (const task of order) {
    const reqs = core.reqs.get(task) ?? [];
    const span = spanOf(task, reqs, ctx.t);
    links.add(span);
    const waitsFor: Wait[] = [];
    for (const r of reqs) {
      if (r.wait) {
        links.add(r.wait.span);
        waitsFor.push(waitOf(r.wait, r.targets));
      } else {
        links.add(r.parent!);
        links.add(r.child!);
        waitsFor.push({ kind: 'child', since: iso(r.child!.start), spanId: r.parent!.spanId, on: r.targets.map((x) => taskKey(x)) });
      }
      chain.push(describe(task, r, ctx.t));
    }
    for (const h of heldBy(task, ctx.t)) links.add(h.span);
    tasks.push({ ...taskRef(task, span), key: taskKey(task), waitsFor, holds: holdsOf(task, ctx.t) });
  }
  const victims = ctx.victims.map((v) => {
    const span = spanOf(v, undefined, ctx.t);
    links.add(span);
    return taskRef(v, span);
  });
  const resources = coreResources(core);
  const services = [...new Set(order.map((t) => t.service))].sort();
  const formed = formedAt(core);
  const f: Finding = {
    kind: 'deadlock',
    state: ctx.state,
    fingerprint: coreFingerprint(core),
    summary:
      `${ctx.state === 'active' ? 'Deadlock' : 'Deadlock (broken)'}: ${order.length} task${order.length === 1 ? '' : 's'} of ` +
      `${services.join(', ')} wait on each other` +
      (resources.length ? ` over ${resources.join(', ')}` : '') +
      (ctx.victimCount ? `; ${ctx.victimCount} more blocked behind them` : ''),
    chain,
    resources,
    services,
    tasks,
    victims: { count: ctx.victimCount, tasks: victims },
    links: links.links,
    formedAt: iso(formed),
  };
  if (ctx.brokenBy) {
    const b = ctx.brokenBy;
    f.resolvedAt = iso(b.at);
    f.durationMs = Math.max(0, Math.round((b.at - formed) / 1e3) / 1e3);
    f.brokenBy = { event: b.event, task: taskRef(b.task, b.span), at: iso(b.at) };
    links.add(b.span);
  }
  return f;
}

/** Builds the finding for a lock-order inversion between two tasks. */
export function inversionFinding(a: OrderEdge, b: OrderEdge, opts: FindingOptions): Finding {
  const links = new LinkSet(opts.jaegerUrl);
  links.add(a.span);
  links.add(b.span);
  const services = [...new Set([a.task.service, b.task.service])].sort();
  const resources = [a.first, a.then].sort();
  const line = (e: OrderEdge) =>
    `Task ${label(e.task)} took lock "${e.then}" (${e.thenMode}) while holding "${e.first}" (${e.firstMode}) at ${iso(e.time)}.`;
  return {
    kind: 'potential-deadlock',
    fingerprint: hash(['potential-deadlock', ...resources, ...services]),
    summary: `Lock-order inversion: "${a.first}" then "${a.then}" in ${label(a.task)}, the reverse in ${label(b.task)}; they can deadlock if they run together`,
    chain: [line(a), line(b)],
    resources,
    services,
    tasks: [a, b].map((e) => ({ ...taskRef(e.task, e.span), key: taskKey(e.task), waitsFor: [], holds: [] })),
    links: links.links,
    orders: [a, b].map((e) => ({ task: taskRef(e.task, e.span), first: e.first, then: e.then, at: iso(e.time) })),
  };
}

