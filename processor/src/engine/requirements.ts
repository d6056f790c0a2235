/**
 * What a task needs before it can go on, in the view at time `t`: its requirements.
 *
 * A requirement is an `all` requirement (every target must go on first: a lock's conflicting holders, a
 * join of all, a child span) or an `any` requirement (one target suffices: a pool's holders, a
 * certificate's issuers, a join of any). A requirement that something outside the graph may satisfy (a
 * free pool unit, an unseen issuer, an unknown task) is not a requirement at all: the detector only
 * reports what it can prove.
 */
import { activeAt, NOW, SpanNode, type HoldIv, type TaskNode, type WaitIv } from './model.js';
import type { GraphStore } from './store.js';

/** One requirement of a task. */
export interface Req {
  all: boolean;
  /** Distinct target tasks. */
  targets: TaskNode[];
  /** Per target: when the edge to it formed. */
  since: number[];
  /** The wait behind it, or undefined for a parent waiting for a child span. */
  wait: WaitIv | undefined;
  /** For parent/child requirements: the waiting span and the child span. */
  parent: SpanNode | undefined;
  child: SpanNode | undefined;
}

/** Who holds `h` in the view at `t`: its taker, or after the taker's span ended, its heir. */
export function ownerAt(h: HoldIv, t: number): TaskNode | undefined {
  return h.handover === undefined || t <= h.handover.at ? h.origin : h.handover.heir;
}

function conflicts(a: string, b: string): boolean {
  return a === 'exclusive' || b === 'exclusive';
}

/**
 * Receives a task's requirements as they are found. `targets` and `since` are scratch arrays, reused for
 * the next requirement: a sink copies what it keeps.
 */
export interface ReqSink {
  req(
    all: boolean,
    targets: readonly TaskNode[],
    since: readonly number[],
    wait: WaitIv | undefined,
    parent: SpanNode | undefined,
    child: SpanNode | undefined,
  ): void;
}

/** Gathers one requirement's distinct targets, each with the earliest time its edge formed. */
class ReqBuilder {
  readonly targets: TaskNode[] = [];
  readonly since: number[] = [];
  reset(): this {
    this.targets.length = 0;
    this.since.length = 0;
    return this;
  }
  add(t: TaskNode, since: number): void {
    const i = this.targets.indexOf(t);
    if (i >= 0) {
      if (since < this.since[i]) this.since[i] = since;
      return;
    }
    this.targets.push(t);
    this.since.push(since);
  }
}

// One builder serves every requirement: they are built one at a time, and a sink never asks for more
// requirements while it takes one.
const builder = new ReqBuilder();

/** Feeds the requirements of `task` in the view at `t` to `sink`, in a fixed order. */
export function eachRequirement(g: GraphStore, task: TaskNode, t: number, sink: ReqSink): void {
  // The present sees only open waits: a long-lived task with none is not walked through its history.
  for (let w = t === NOW && task.openWaitCount === 0 ? undefined : task.waits; w !== undefined; w = w.next) {
    if (!activeAt(w.start, w.end, t)) continue;
    switch (w.kind) {
      case 'lock':
        lockReq(g, task, w, t, sink);
        break;
      case 'pool':
        poolReq(g, w, w.res, w.size, t, sink);
        break;
      case 'rpc':
        // While a server span (or a proxy hop) is open below the client span, the parent/child
        // requirement carries the wait; before that, the callee's intake pool does, where named.
        if (w.res && !hasOpenChild(g, w.span, t)) poolReq(g, w, w.res, 0, t, sink);
        break;
      case 'cert':
        certReq(g, w, t, sink);
        break;
      case 'task':
        taskReq(g, task, w, t, sink);
        break;
    }
  }
  // A parent waits for its children while it is open: in the present, only an open span can.
  if (t === NOW) {
    // The present sees only open spans: a thread is not walked through its history of spans.
    const open = task.openSpansOf();
    if (open === undefined) return;
    if (open instanceof SpanNode) childReqs(g, task, open, t, sink);
    else for (const s of open) childReqs(g, task, s, t, sink);
    return;
  }
  for (let i = 0, n = task.spanCount; i < n; i++) childReqs(g, task, task.spanAt(i), t, sink);
}

/** The requirements of a task on the children of its span `s` that are active at `t` (if `s` is). */
function childReqs(g: GraphStore, task: TaskNode, s: SpanNode, t: number, sink: ReqSink): void {
  if (s.task !== task || s.stale || !activeAt(s.start, s.end, t)) return;
  // The present waits only for open children: a span none of whose children was ever open has none.
  if (t === NOW && !s.openChildSeen) return;
  const kids = g.childrenOf(s);
  for (const c of kids) {
    if (c.task === task || c.detached || c.stale || !activeAt(c.start, c.end, t)) continue;
    if (!newestAttempt(kids, c, t)) continue;
    const b = builder.reset();
    b.add(c.task, c.start);
    sink.req(true, b.targets, b.since, undefined, s, c);
  }
}

/** Collects requirements as Req objects. */
class ReqCollector implements ReqSink {
  out: Req[] = [];
  req(all: boolean, targets: readonly TaskNode[], since: readonly number[], wait: WaitIv | undefined, parent: SpanNode | undefined, child: SpanNode | undefined): void {
    this.out.push({ all, targets: targets.slice(), since: since.slice(), wait, parent, child });
  }
}

const collector = new ReqCollector();

/** The requirements of `task` in the view at `t`. */
export function requirements(g: GraphStore, task: TaskNode, t: number): Req[] {
  const reqs: Req[] = (collector.out = []);
  eachRequirement(g, task, t, collector);
  collector.out = [];
  return reqs;
}

function lockReq(g: GraphStore, task: TaskNode, w: WaitIv, t: number, sink: ReqSink): void {
  const b = builder.reset();
  for (const h of g.holdsAt('lock', w.res, t)) {
    if (!activeAt(h.start, h.end, t)) continue;
    const owner = ownerAt(h, t);
    if (owner === undefined) continue; // held by something unseen: it may let go
    if (owner === task) {
      // Waiting for a lock it already holds: an upgrade waits only for the others; a second exclusive
      // request of a non-reentrant lock waits for itself forever.
      const reentrant = h.lockKind === 'monitor' || w.lockKind === 'monitor';
      if (h.mode === 'exclusive' && !reentrant) b.add(task, Math.max(w.start, h.start));
      continue;
    }
    if (conflicts(w.mode, h.mode)) b.add(owner, Math.max(w.start, h.start, h.handover === undefined || t <= h.handover.at ? 0 : h.handover.at));
  }
  if (b.targets.length) sink.req(true, b.targets, b.since, w, undefined, undefined);
}

function poolReq(g: GraphStore, w: WaitIv, pool: string, size: number, t: number, sink: ReqSink): void {
  const b = builder.reset();
  let units = 0;
  let cap = size;
  for (const h of g.holdsAt('pool', pool, t)) {
    if (!activeAt(h.start, h.end, t)) continue;
    const owner = ownerAt(h, t);
    if (owner === undefined) return; // a holder we cannot see may give its unit back
    units++;
    if (h.size > cap) cap = h.size;
    b.add(owner, Math.max(w.start, h.start));
  }
  if (units === 0 || (cap > 0 && units < cap)) return; // a unit is free
  sink.req(false, b.targets, b.since, w, undefined, undefined);
}

function certReq(g: GraphStore, w: WaitIv, t: number, sink: ReqSink): void {
  const ready = g.certReady.get(w.res);
  for (const r of ready) if (r.time >= w.start && r.time < t) return;
  // Nobody seen issuing it: an issuer may yet come, so no requirement.
  const b = builder.reset();
  for (const i of g.certIssues.get(w.res)) if (activeAt(i.start, i.end, t)) b.add(i.task, Math.max(w.start, i.start));
  if (b.targets.length) sink.req(false, b.targets, b.since, w, undefined, undefined);
}

function taskReq(g: GraphStore, task: TaskNode, w: WaitIv, t: number, sink: ReqSink): void {
  const b = builder.reset();
  const any = w.mode === 'any';
  for (const id of w.on ?? []) {
    const ref = g.resolveTaskRef(task.instance, w.span.traceId, id);
    // A task never seen, or a span that has ended, can go on (or is done).
    const done = ref === undefined || (ref.span !== undefined && !activeAt(ref.span.start, ref.span.end, t));
    if (done) {
      if (any) return;
      continue;
    }
    b.add(ref.task, w.start);
  }
  if (b.targets.length) sink.req(!any, b.targets, b.since, w, undefined, undefined);
}

function hasOpenChild(g: GraphStore, span: SpanNode, t: number): boolean {
  const kids = g.childrenOf(span);
  for (const c of kids) if (!c.detached && !c.stale && activeAt(c.start, c.end, t)) return true;
  return false;
}

/**
 * Retries: of several attempts (same name, `http.request.resend_count` 1, 2, ...) under one parent, the
 * parent waits only for the newest one started; an attempt without the attribute counts as the first.
 */
function newestAttempt(siblings: readonly SpanNode[], c: SpanNode, t: number): boolean {
  let newest = -1;
  let retried = false;
  for (const s of siblings) {
    if (s.name !== c.name || s.start >= t) continue;
    if (s.attempt >= 1) retried = true;
    if (s.attempt > newest) newest = s.attempt;
  }
  if (!retried) return true;
  return Math.max(c.attempt, 0) === newest;
}

/** Whether a wait is still open in the view at `t` (exported for the finding builder). */
export function openAt(w: { start: number; end: number }, t: number): boolean {
  return activeAt(w.start, w.end, t);
}

/** The tasks that wait directly on `task` in the view at `t` (the reverse of `requirements`). */
export function waitersOf(g: GraphStore, task: TaskNode, t: number): Set<TaskNode> {
  const out = new Set<TaskNode>();
  const waitersOfHold = (h: HoldIv) => {
    if (!activeAt(h.start, h.end, t) || ownerAt(h, t) !== task) return;
    for (const w of (h.kind === 'lock' ? g.lockWaits : g.poolWaits).get(h.res)) if (w.task !== task && activeAt(w.start, w.end, t)) out.add(w.task);
  };
  for (let h = task.holds; h !== undefined; h = h.next) waitersOfHold(h);
  for (const h of task.inherited) waitersOfHold(h);
  for (const i of task.issues) {
    if (!activeAt(i.start, i.end, t)) continue;
    for (const w of g.certWaits.get(i.cert)) if (w.task !== task && activeAt(w.start, w.end, t)) out.add(w.task);
  }
  // Joins name a task id of their own instance, or a span id of any service.
  const ids = new Set<string>([task.taskId]);
  for (let i = 0, n = task.spanCount; i < n; i++) if (task.spanAt(i).task === task) ids.add(task.spanAt(i).spanId);
  for (const id of ids) {
    for (const w of g.taskWaits.get(id)) {
      if (activeAt(w.start, w.end, t) && g.resolveTaskRef(w.task.instance, w.span.traceId, id)?.task === task) out.add(w.task);
    }
  }
  for (let i = 0, n = task.spanCount; i < n; i++) {
    const s = task.spanAt(i);
    if (s.task !== task || s.detached || !activeAt(s.start, s.end, t)) continue;
    const p = g.parentOf(s);
    if (p && p.task !== task && !p.stale && activeAt(p.start, p.end, t)) out.add(p.task);
  }
  out.delete(task);
  return out;
}

