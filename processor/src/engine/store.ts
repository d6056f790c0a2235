/**
 * The graph store: keeps the newest version of every span, assigns events to tasks, and derives each
 * task's intervals of waiting, holding and issuing, with indices by resource.
 *
 * Order independence: which version of a span is kept depends only on the versions' contents (an ended
 * span beats any snapshot; among snapshots, more events, then later events), and a task's intervals are
 * derived from the union of its spans' events sorted by time. So the state after any sequence of inputs
 * is a function of the set of inputs: duplicates, reordering and stale snapshots change nothing.
 *
 * Cost: adding a span version re-derives only the tasks its events belong to, in proportion to their
 * events; nothing here walks the whole graph.
 */
import { ATTR, EVENT, PROXY_COMPONENT } from '../../../schemas/index.js';
import type { Attributes, AttrValue, LogEventRecord, SpanEventRecord, SpanRecord } from '../model/span.js';
import {
  OPEN,
  type EventNode,
  type HoldIv,
  type IssueIv,
  type OrderEdge,
  type SpanNode,
  type TaskNode,
  type WaitIv,
} from './model.js';

const WAIT_EVENTS: ReadonlySet<string> = new Set(Object.values(EVENT));

/** Things touched by an update, for incremental detection. */
export interface Touched {
  tasks: Set<TaskNode>;
  /** Waits ended by a timeout: seeds for finding deadlocks that timeouts broke. */
  timeouts: WaitIv[];
  /** Lock pairs whose order edges changed. */
  orderPairs: Set<string>;
}

/**
 * Index of items by a string key. Most keys have one item (a lock with one holder), so a lone item is
 * kept as is and only a second one makes a set: a set per lock would cost more than the lock's hold.
 */
class MultiIndex<T extends object> {
  private readonly map = new Map<string, T | Set<T>>();
  add(key: string, item: T): void {
    const cur = this.map.get(key);
    if (cur === undefined) this.map.set(key, item);
    else if (cur instanceof Set) cur.add(item);
    else if (cur !== item) this.map.set(key, new Set([cur, item]));
  }
  delete(key: string, item: T): void {
    const cur = this.map.get(key);
    if (cur === item) this.map.delete(key);
    else if (cur instanceof Set) {
      cur.delete(item);
      if (cur.size === 1) this.map.set(key, cur.values().next().value as T);
    }
  }
  /** The items under `key` (empty when none). */
  get(key: string): Iterable<T> {
    const cur = this.map.get(key);
    return cur === undefined ? EMPTY : cur instanceof Set ? cur : [cur];
  }
  has(key: string): boolean {
    return this.map.has(key);
  }
}

const EMPTY: readonly never[] = Object.freeze([]);

/**
 * Spans by id. Span ids are random 64-bit values, so the span id alone keys them; the rare span whose id
 * another trace already uses goes to a second map keyed by trace and span id.
 */
export class SpanTable {
  private readonly byId = new Map<string, SpanNode>();
  private readonly clash = new Map<string, SpanNode>();
  get(traceId: string, spanId: string): SpanNode | undefined {
    const s = this.byId.get(spanId);
    if (s !== undefined && s.traceId === traceId) return s;
    return this.clash.size ? this.clash.get(traceId + spanId) : undefined;
  }
  set(span: SpanNode): void {
    const s = this.byId.get(span.spanId);
    if (s === undefined || s.traceId === span.traceId) this.byId.set(span.spanId, span);
    else this.clash.set(span.traceId + span.spanId, span);
  }
  get size(): number {
    return this.byId.size + this.clash.size;
  }
}

/** Interned strings: service names repeat on every span. */
class Interner {
  private readonly map = new Map<string, string>();
  get(s: string): string {
    const cur = this.map.get(s);
    if (cur !== undefined) return cur;
    if (this.map.size < 100_000) this.map.set(s, s);
    return s;
  }
}

function str(v: AttrValue | undefined): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v === '' ? undefined : v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}

function bool(v: AttrValue | undefined): boolean {
  return v === true || v === 'true';
}

function int(v: AttrValue | undefined): number {
  if (typeof v === 'number') return Math.trunc(v);
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return Number(v);
  return -1;
}

function strings(v: AttrValue | undefined): string[] | undefined {
  if (Array.isArray(v)) {
    const out = v.map((x) => str(x as AttrValue)).filter((x): x is string => x !== undefined);
    return out.length ? out : undefined;
  }
  const s = str(v);
  return s === undefined ? undefined : [s];
}

function lockMode(v: AttrValue | undefined): 'exclusive' | 'shared' {
  return v === 'shared' ? 'shared' : 'exclusive';
}

/** The span store and its derived intervals. */
export class GraphStore {
  /** The newest version of every span. */
  readonly spans = new SpanTable();
  /** Tasks by instance, then task id. */
  readonly tasks = new Map<string, Map<string, TaskNode>>();
  /** How many tasks there are. */
  taskCount = 0;
  /** Child spans by parent span id (the parent may not have arrived; check the trace id). */
  readonly children = new Map<string, SpanNode[]>();

  readonly lockHolds = new MultiIndex<HoldIv>();
  readonly lockWaits = new MultiIndex<WaitIv>();
  readonly poolHolds = new MultiIndex<HoldIv>();
  /** pool waits and rpc waits that name the callee's intake pool. */
  readonly poolWaits = new MultiIndex<WaitIv>();
  readonly certIssues = new MultiIndex<IssueIv>();
  readonly certWaits = new MultiIndex<WaitIv>();
  /** cert.ready times by cert id. */
  readonly certReady = new MultiIndex<{ time: number }>();
  /** task waits by each id in their task.wait.on list (a task id of their instance, or a span id). */
  readonly taskWaits = new MultiIndex<WaitIv>();
  /** Lock-order edges by `first \0 then`, derived afresh with each task's events. */
  private readonly orderIndex = new MultiIndex<OrderEdge>();
  /** Holds handed over, by the key of the span they rest at (or wait for, while it is unknown). */
  readonly handovers = new MultiIndex<HoldIv>();


  private readonly proxyServices: ReadonlySet<string>;
  private readonly strings = new Interner();

  constructor(proxyServices: readonly string[] = []) {
    this.proxyServices = new Set(proxyServices);
  }

  /** The tasks' edges that took `first`, then `then` while holding it. */
  orderEdges(first: string, then: string): Iterable<OrderEdge> {
    return this.orderIndex.get(first + '\0' + then);
  }

  /** Adds one span version. Returns false when an equal or newer version was already kept. */
  addSpan(rec: SpanRecord, observedAt: number, touched: Touched): boolean {
    const old = this.spans.get(rec.traceId, rec.spanId);
    const end = rec.endTimeUnixNano > 0 ? rec.endTimeUnixNano : OPEN;
    let lastEventTime = 0;
    let waitEventCount = 0;
    for (const e of rec.events) {
      if (e.timeUnixNano > lastEventTime) lastEventTime = e.timeUnixNano;
      if (WAIT_EVENTS.has(e.name)) waitEventCount++;
    }
    if (old && !old.placeholder) {
      if (!newerVersion(end, rec.events.length, lastEventTime, old)) {
        if (observedAt > old.observedAt && old.end === end && old.eventCount === rec.events.length) {
          // The same version seen again: it is still alive.
          old.observedAt = observedAt;
          if (old.stale) {
            old.stale = false;
            this.rederive(old, touched);
          }
        }
        return false;
      }
    }
    const res = rec.resource;
    const service = this.strings.get(str(res[ATTR.SERVICE_NAME]) ?? 'unknown_service');
    const rawInstanceId = str(res[ATTR.SERVICE_INSTANCE_ID]);
    const instanceId = rawInstanceId === undefined ? undefined : this.strings.get(rawInstanceId);
    const instance = instanceId === undefined ? service : this.strings.get(service + '/' + instanceId);
    const attrs = rec.attributes;
    const spanTaskId = str(attrs[ATTR.TASK_ID]) ?? str(attrs[ATTR.THREAD_ID]) ?? firstEventTaskId(rec.events);
    const task = this.task(instance, service, instanceId, spanTaskId ?? rec.spanId, spanTaskId === undefined);
    const proxy = attrs[ATTR.COMPONENT] === PROXY_COMPONENT || this.proxyServices.has(service);
    const span: SpanNode = {
      traceId: rec.traceId,
      spanId: rec.spanId,
      parentSpanId: rec.parentSpanId || undefined,
      name: rec.name,
      start: rec.startTimeUnixNano,
      end,
      instance,
      task,
      detached: bool(attrs[ATTR.TASK_DETACHED]),
      attempt: attrs[ATTR.HTTP_RESEND_COUNT] === undefined ? -1 : Math.max(0, int(attrs[ATTR.HTTP_RESEND_COUNT])),
      events: EMPTY as unknown as EventNode[],
      logEvents: undefined,
      placeholder: false,
      eventCount: rec.events.length,
      lastEventTime,
      observedAt: Math.max(observedAt, old?.observedAt ?? 0),
      stale: false,
    };
    if (waitEventCount > 0 && !proxy) {
      const events = new Array<EventNode>(waitEventCount);
      let i = 0;
      let k = 0;
      for (const e of rec.events) {
        if (WAIT_EVENTS.has(e.name)) events[k++] = this.eventNode(e, i, span, task);
        i++;
      }
      span.events = events;
    }
    // Log events that arrived before this version named their task from the log record alone; the
    // span's own task attributes now apply to them.
    if (old?.logEvents) {
      span.logEvents = old.logEvents.map((e) =>
        this.eventNode({ name: e.name, timeUnixNano: e.time, attributes: e.attrs }, e.index, span, task),
      );
    }

    this.replace(old, span, touched);
    return true;
  }

  /** Adds one wait event that arrived as a log record. */
  addLogEvent(rec: LogEventRecord, observedAt: number, touched: Touched): boolean {
    if (!WAIT_EVENTS.has(rec.name)) return false;
    let span = this.spans.get(rec.traceId, rec.spanId);
    if (span) {
      for (const e of allEvents(span)) {
        if (e.name === rec.name && e.time === rec.timeUnixNano && sameAttrs(e.attrs, rec.attributes)) return false;
      }
    } else {
      const service = this.strings.get(str(rec.resource[ATTR.SERVICE_NAME]) ?? 'unknown_service');
      const rawInstanceId = str(rec.resource[ATTR.SERVICE_INSTANCE_ID]);
      const instanceId = rawInstanceId === undefined ? undefined : this.strings.get(rawInstanceId);
      const instance = instanceId === undefined ? service : this.strings.get(service + '/' + instanceId);
      const taskId = str(rec.attributes[ATTR.TASK_ID]) ?? str(rec.attributes[ATTR.THREAD_ID]);
      span = {
        traceId: rec.traceId,
        spanId: rec.spanId,
        parentSpanId: undefined,
        name: '',
        start: rec.timeUnixNano,
        end: OPEN,
        instance,
        task: this.task(instance, service, instanceId, taskId ?? rec.spanId, taskId === undefined),
        detached: false,
        attempt: -1,
        events: EMPTY as unknown as EventNode[],
        logEvents: undefined,
        placeholder: true,
        eventCount: 0,
        lastEventTime: 0,
        observedAt,
        stale: false,
      };
      this.spans.set(span);
      this.attachTask(span.task, span);
    }
    span.observedAt = Math.max(span.observedAt, observedAt);
    if (span.placeholder && rec.timeUnixNano < span.start) span.start = rec.timeUnixNano;
    const ev: SpanEventRecord = { name: rec.name, timeUnixNano: rec.timeUnixNano, attributes: rec.attributes };
    const node = this.eventNode(ev, 1_000_000 + (span.logEvents?.length ?? 0), span, span.task);
    (span.logEvents ??= []).push(node);
    this.attachTask(node.task, span);
    this.derive(node.task, touched);
    return true;
  }

  /** Marks a span's waits and holds as untrusted (no fresh snapshot came), or trusted again. */
  setStale(span: SpanNode, stale: boolean, touched: Touched): void {
    if (span.stale === stale) return;
    span.stale = stale;
    this.rederive(span, touched);
  }

  private rederive(span: SpanNode, touched: Touched): void {
    const tasks = new Set<TaskNode>([span.task]);
    for (const e of allEvents(span)) tasks.add(e.task);
    for (const t of tasks) this.derive(t, touched);
    this.resolveHandovers(span, touched);
    touched.tasks.add(span.task);
  }

  private eventNode(e: SpanEventRecord, index: number, span: SpanNode, spanTask: TaskNode): EventNode {
    const a = e.attributes;
    const own = str(a[ATTR.TASK_ID]) ?? str(a[ATTR.THREAD_ID]);
    const task =
      own === undefined || own === spanTask.taskId
        ? spanTask
        : this.task(span.instance, spanTask.service, spanTask.instanceId, own, false);
    return { name: e.name, time: e.timeUnixNano, index, task, attrs: a, span };
  }

  private task(instance: string, service: string, instanceId: string | undefined, taskId: string, spanTask: boolean): TaskNode {
    let byId = this.tasks.get(instance);
    if (!byId) this.tasks.set(instance, (byId = new Map()));
    let t = byId.get(taskId);
    if (!t) {
      t = {
        instance,
        service,
        instanceId,
        taskId,
        spanTask,
        spans: EMPTY as unknown as SpanNode[],
        waits: EMPTY as unknown as WaitIv[],
        holds: EMPTY as unknown as HoldIv[],
        inherited: EMPTY as unknown as HoldIv[],
        issues: EMPTY as unknown as IssueIv[],
        readies: undefined,
        orders: EMPTY as unknown as OrderEdge[],
        orphanReleases: EMPTY as unknown as { lock: string; time: number }[],
      };
      byId.set(taskId, t);
      this.taskCount++;
    }
    return t;
  }

  /** Every task. */
  *allTasks(): Iterable<TaskNode> {
    for (const byId of this.tasks.values()) yield* byId.values();
  }

  /** The children of a span. */
  childrenOf(span: SpanNode): SpanNode[] {
    const kids = this.children.get(span.spanId);
    if (kids === undefined) return EMPTY as unknown as SpanNode[];
    for (const k of kids) if (k.traceId !== span.traceId) return kids.filter((c) => c.traceId === span.traceId);
    return kids;
  }

  /** The parent of a span, if it has arrived. */
  parentOf(span: SpanNode): SpanNode | undefined {
    return span.parentSpanId === undefined ? undefined : this.spans.get(span.traceId, span.parentSpanId);
  }

  /**
   * Looks a task up by an id of a task.wait.on list: a task id of the waiter's service instance, or the
   * id of a span in the waiter's trace.
   */
  resolveTaskRef(instance: string, traceId: string, id: string): { task: TaskNode; span: SpanNode | undefined } | undefined {
    const span = this.spans.get(traceId, id);
    const t = this.tasks.get(instance)?.get(id);
    if (t && !(t.spanTask && span && span.task !== t)) return { task: t, span: t.spanTask ? span : undefined };
    if (span) return { task: span.task, span };
    return undefined;
  }

  private attachTask(task: TaskNode, span: SpanNode): void {
    if (!task.spans.includes(span)) task.spans = task.spans.length === 0 ? [span] : [...task.spans, span];
  }

  private detachTask(task: TaskNode, span: SpanNode): void {
    if (task.spans.includes(span)) task.spans = task.spans.filter((s) => s !== span);
  }

  private replace(old: SpanNode | undefined, span: SpanNode, touched: Touched): void {
    const affected = new Set<TaskNode>();
    if (old) {
      for (const e of allEvents(old)) affected.add(e.task);
      affected.add(old.task);
      for (const t of affected) this.detachTask(t, old);
      if (old.parentSpanId) removeFrom(this.children, old.parentSpanId, old);
    }
    this.spans.set(span);
    if (span.parentSpanId) {
      const list = this.children.get(span.parentSpanId);
      if (!list) this.children.set(span.parentSpanId, [span]);
      else list.push(span);
    }
    affected.add(span.task);
    this.attachTask(span.task, span);
    for (const e of allEvents(span)) {
      affected.add(e.task);
      this.attachTask(e.task, span);
    }
    for (const t of affected) this.derive(t, touched);
    // Holds resting at or waiting for this span move when it appears or ends.
    this.resolveHandovers(span, touched);
    // The parent's task waits for this span.
    const parent = this.parentOf(span);
    if (parent) touched.tasks.add(parent.task);
  }

  /** Re-derives a task's intervals from the events of its spans. */
  derive(task: TaskNode, touched: Touched): void {
    this.unindex(task);
    touched.tasks.add(task);
    task.readies = undefined;
    const evs: EventNode[] = [];
    for (const s of task.spans) {
      if (s.stale) continue;
      for (const e of s.events) if (e.task === task) evs.push(e);
      if (s.logEvents) for (const e of s.logEvents) if (e.task === task) evs.push(e);
    }
    evs.sort(eventOrder);

    const waits: WaitIv[] = [];
    const holds: HoldIv[] = [];
    const issues: IssueIv[] = [];
    const orders: OrderEdge[] = [];
    const orphans: { lock: string; time: number }[] = [];
    for (const e of evs) {
      const a = e.attrs;
      switch (e.name) {
        case EVENT.LOCK_WAIT: {
          const id = str(a[ATTR.LOCK_ID]);
          if (id === undefined || openWait(waits, 'lock', id)) break;
          const mode = lockMode(a[ATTR.LOCK_MODE]);
          waits.push(wait(task, 'lock', id, mode, str(a[ATTR.LOCK_KIND]), 0, undefined, e));
          break;
        }
        case EVENT.LOCK_ACQUIRE: {
          const id = str(a[ATTR.LOCK_ID]);
          if (id === undefined) break;
          const w = openWait(waits, 'lock', id);
          if (w) close(w, e);
          const mode = lockMode(a[ATTR.LOCK_MODE]);
          // Lock-order edges come from acquisitions: a wait that closes a cycle is a deadlock, reported
          // as one, and a wait that ends in an acquire records its edge then.
          recordOrder(task, holds, orders, e, id, mode);
          const h = holds.find((x) => x.end === OPEN && x.kind === 'lock' && x.res === id);
          if (h) {
            // A re-entrant acquire, or an upgrade from shared: one hold, in the stronger mode.
            if (mode === 'exclusive') h.mode = 'exclusive';
            break;
          }
          holds.push(hold(task, 'lock', id, mode, str(a[ATTR.LOCK_KIND]) ?? w?.lockKind, 0, e));
          break;
        }
        case EVENT.LOCK_RELEASE: {
          const id = str(a[ATTR.LOCK_ID]);
          if (id === undefined) break;
          const h = holds.find((x) => x.end === OPEN && x.kind === 'lock' && x.res === id);
          if (h) h.end = e.time;
          else orphans.push({ lock: id, time: e.time });
          break;
        }
        case EVENT.LOCK_TIMEOUT: {
          const id = str(a[ATTR.LOCK_ID]);
          const w = id === undefined ? undefined : openWait(waits, 'lock', id);
          if (w) close(w, e);
          break;
        }
        case EVENT.POOL_WAIT: {
          const id = str(a[ATTR.POOL_NAME]);
          if (id === undefined || openWait(waits, 'pool', id)) break;
          waits.push(wait(task, 'pool', id, 'exclusive', undefined, poolSize(a), undefined, e));
          break;
        }
        case EVENT.POOL_CHECKOUT: {
          const id = str(a[ATTR.POOL_NAME]);
          if (id === undefined) break;
          const w = openWait(waits, 'pool', id);
          if (w) close(w, e);
          holds.push(hold(task, 'pool', id, 'exclusive', undefined, poolSize(a) || (w?.size ?? 0), e));
          break;
        }
        case EVENT.POOL_CHECKIN: {
          const id = str(a[ATTR.POOL_NAME]);
          if (id === undefined) break;
          for (let i = holds.length - 1; i >= 0; i--) {
            const h = holds[i];
            if (h.end === OPEN && h.kind === 'pool' && h.res === id) {
              h.end = e.time;
              break;
            }
          }
          break;
        }
        case EVENT.POOL_TIMEOUT: {
          const id = str(a[ATTR.POOL_NAME]);
          const w = id === undefined ? undefined : openWait(waits, 'pool', id);
          if (w) close(w, e);
          break;
        }
        case EVENT.RPC_WAIT: {
          if (waits.some((w) => w.end === OPEN && w.kind === 'rpc' && w.span === e.span)) break;
          waits.push(wait(task, 'rpc', str(a[ATTR.POOL_NAME]) ?? '', 'all', undefined, 0, undefined, e));
          break;
        }
        case EVENT.RPC_DONE:
        case EVENT.RPC_TIMEOUT: {
          const w = waits.find((x) => x.end === OPEN && x.kind === 'rpc' && x.span === e.span);
          if (w) close(w, e);
          break;
        }
        case EVENT.CERT_WAIT: {
          const id = str(a[ATTR.CERT_ID]);
          if (id === undefined || openWait(waits, 'cert', id)) break;
          waits.push(wait(task, 'cert', id, 'any', undefined, 0, undefined, e));
          break;
        }
        case EVENT.CERT_ISSUE: {
          const id = str(a[ATTR.CERT_ID]);
          if (id === undefined || issues.some((i) => i.end === OPEN && i.cert === id)) break;
          issues.push({ task, cert: id, span: e.span, start: e.time, end: OPEN });
          break;
        }
        case EVENT.CERT_READY: {
          const id = str(a[ATTR.CERT_ID]);
          if (id === undefined) break;
          (task.readies ??= []).push({ cert: id, time: e.time });
          for (const i of issues) if (i.end === OPEN && i.cert === id) i.end = e.time;
          const w = openWait(waits, 'cert', id);
          if (w) close(w, e);
          break;
        }
        case EVENT.CERT_TIMEOUT: {
          const id = str(a[ATTR.CERT_ID]);
          const w = id === undefined ? undefined : openWait(waits, 'cert', id);
          if (w) close(w, e);
          break;
        }
        case EVENT.TASK_WAIT: {
          const on = strings(a[ATTR.TASK_WAIT_ON]);
          if (on === undefined || openWait(waits, 'task', '')) break;
          const mode = a[ATTR.TASK_WAIT_MODE] === 'any' ? 'any' : 'all';
          waits.push(wait(task, 'task', '', mode, undefined, 0, on, e));
          break;
        }
        case EVENT.TASK_RESUME:
        case EVENT.TASK_TIMEOUT: {
          const w = openWait(waits, 'task', '');
          if (w) close(w, e);
          break;
        }
      }
    }
    // The end of a span ends the waits recorded on it; a span-task's open holds pass to its nearest open
    // ancestor in the same service instance.
    for (const w of waits) {
      if (w.end === OPEN && w.span.end !== OPEN && w.span.end >= w.start) {
        w.end = w.span.end;
        w.endedBy = 'span.end';
      }
    }
    if (task.spanTask) {
      for (const h of holds) {
        if (h.end === OPEN && h.span.end !== OPEN && h.span.task === task) {
          h.handover = { at: h.span.end, heir: undefined, rest: undefined };
        }
      }
    }
    // Exact-size copies: an array grown by push keeps spare room, and there is one per task.
    task.waits = waits.length ? waits.slice() : (EMPTY as unknown as WaitIv[]);
    task.holds = holds.length ? holds.slice() : (EMPTY as unknown as HoldIv[]);
    task.issues = issues.length ? issues.slice() : (EMPTY as unknown as IssueIv[]);
    task.orphanReleases = orphans.length ? orphans.slice() : (EMPTY as unknown as { lock: string; time: number }[]);
    task.orders = orders.length ? orders : (EMPTY as unknown as OrderEdge[]);
    this.index(task, touched);
  }

  private unindex(task: TaskNode): void {
    for (const w of task.waits) {
      if (w.kind === 'lock') this.lockWaits.delete(w.res, w);
      else if (w.kind === 'pool' || (w.kind === 'rpc' && w.res)) this.poolWaits.delete(w.res, w);
      else if (w.kind === 'cert') this.certWaits.delete(w.res, w);
      else if (w.kind === 'task' && w.on) for (const id of w.on) this.taskWaits.delete(id, w);
    }
    for (const h of task.holds) {
      (h.kind === 'lock' ? this.lockHolds : this.poolHolds).delete(h.res, h);
      if (h.handover) this.dropHandover(h);
    }
    for (const i of task.issues) this.certIssues.delete(i.cert, i);
    for (const o of task.orders) this.orderIndex.delete(o.first + '\0' + o.then, o);
    for (const r of task.readies ?? EMPTY) this.certReady.delete(r.cert, r);
    task.readies = undefined;
  }

  private index(task: TaskNode, touched: Touched): void {
    for (const w of task.waits) {
      if (w.kind === 'lock') this.lockWaits.add(w.res, w);
      else if (w.kind === 'pool' || (w.kind === 'rpc' && w.res)) this.poolWaits.add(w.res, w);
      else if (w.kind === 'cert') this.certWaits.add(w.res, w);
      else if (w.kind === 'task' && w.on) for (const id of w.on) this.taskWaits.add(id, w);
      if (w.endedBy?.endsWith('.timeout')) touched.timeouts.push(w);
    }
    for (const h of task.holds) {
      (h.kind === 'lock' ? this.lockHolds : this.poolHolds).add(h.res, h);
      if (h.handover) this.placeHandover(h, touched);
    }
    for (const i of task.issues) this.certIssues.add(i.cert, i);
    for (const o of task.orders) {
      this.orderIndex.add(o.first + '\0' + o.then, o);
      touched.orderPairs.add(o.first < o.then ? o.first + '\0' + o.then : o.then + '\0' + o.first);
    }
    for (const r of task.readies ?? EMPTY) this.certReady.add(r.cert, r);
  }

  /** Hands a hold over to the nearest open ancestor span of the same service instance. */
  private placeHandover(h: HoldIv, touched: Touched): void {
    let cur: SpanNode = h.span;
    let heir: TaskNode | undefined;
    let rest: string | undefined;
    let arrived = true;
    // Reused span ids can make a parent chain loop; past a depth no real trace reaches, remember the
    // spans walked so a loop ends the walk (a loop of ended spans has no open ancestor).
    let depth = 0;
    let walked: Set<SpanNode> | undefined;
    while (cur.parentSpanId !== undefined) {
      rest = cur.parentSpanId;
      const s = this.spans.get(cur.traceId, rest);
      if (!s) {
        arrived = false; // not arrived yet: the hold waits for it
        break;
      }
      if (s.instance !== h.span.instance) break; // the ancestor chain leaves the instance: nobody inherits
      if (s.end === OPEN && !s.stale) {
        heir = s.task;
        break;
      }
      cur = s; // ended: remembered as `rest`, so the hand-over is redone if this span changes
      if (++depth > 64) {
        walked ??= new Set();
        if (walked.has(s)) break;
        walked.add(s);
      }
    }
    const ho = h.handover!;
    ho.heir = heir;
    // A release by the heir's task after the hand-over ends the hold.
    if (heir) {
      for (const r of heir.orphanReleases) {
        if (r.lock === h.res && r.time >= ho.at && r.time < h.end) h.end = r.time;
      }
      heir.inherited = [...heir.inherited, h];
      touched.tasks.add(heir);
    } else {
      // No open ancestor: the hold ended with its span.
      if (arrived) h.end = Math.min(h.end, ho.at);
    }
    ho.rest = rest;
    if (rest !== undefined) this.handovers.add(rest, h);
  }

  private dropHandover(h: HoldIv): void {
    const ho = h.handover!;
    if (ho.heir) ho.heir.inherited = ho.heir.inherited.filter((x) => x !== h);
    if (ho.rest !== undefined) this.handovers.delete(ho.rest, h);
  }

  private resolveHandovers(span: SpanNode, touched: Touched): void {
    if (!this.handovers.has(span.spanId)) return;
    const origins = new Set<TaskNode>();
    for (const h of this.handovers.get(span.spanId)) if (h.span.traceId === span.traceId) origins.add(h.origin);
    for (const t of origins) this.derive(t, touched);
  }
}

function openWait(waits: WaitIv[], kind: string, res: string): WaitIv | undefined {
  for (let i = waits.length - 1; i >= 0; i--) {
    const w = waits[i];
    if (w.end === OPEN && w.kind === kind && w.res === res) return w;
  }
  return undefined;
}

/** Records the lock-order edges of taking `lock` while holding others (lockdep's dependency edges). */
function recordOrder(task: TaskNode, holds: HoldIv[], orders: OrderEdge[], e: EventNode, lock: string, mode: 'exclusive' | 'shared'): void {
  let held: HoldIv[] | undefined;
  for (const h of holds) if (h.kind === 'lock' && h.end === OPEN) (held ??= []).push(h);
  if (held === undefined) return;
  const gates = held.map((h) => h.res);
  for (const h of held) {
    if (h.res === lock) continue;
    if (orders.some((o) => o.first === h.res && o.then === lock)) continue;
    orders.push({
      task,
      first: h.res,
      firstMode: h.mode,
      then: lock,
      thenMode: mode,
      gates: gates.length > 2 ? gates.filter((g) => g !== h.res && g !== lock) : (EMPTY as unknown as string[]),
      span: e.span,
      time: e.time,
    });
  }
}

function firstEventTaskId(events: SpanEventRecord[]): string | undefined {
  for (const e of events) {
    if (!WAIT_EVENTS.has(e.name)) continue;
    const id = str(e.attributes[ATTR.TASK_ID]) ?? str(e.attributes[ATTR.THREAD_ID]);
    if (id !== undefined) return id;
  }
  return undefined;
}

function poolSize(a: Attributes): number {
  const n = int(a[ATTR.POOL_SIZE]);
  return n > 0 ? n : 0;
}

function wait(
  task: TaskNode,
  kind: WaitIv['kind'],
  res: string,
  mode: WaitIv['mode'],
  lockKind: string | undefined,
  size: number,
  on: string[] | undefined,
  e: EventNode,
): WaitIv {
  return { task, kind, res, mode, lockKind, size, on, span: e.span, start: e.time, end: OPEN, endedBy: undefined };
}

function hold(
  task: TaskNode,
  kind: HoldIv['kind'],
  res: string,
  mode: HoldIv['mode'],
  lockKind: string | undefined,
  size: number,
  e: EventNode,
): HoldIv {
  return { origin: task, handover: undefined, kind, res, mode, lockKind, size, span: e.span, start: e.time, end: OPEN };
}

function close(w: WaitIv, e: EventNode): void {
  w.end = e.time;
  w.endedBy = e.name;
}

/** Whether a new version (end, event count, last event time) replaces the kept one. */
function newerVersion(end: number, eventCount: number, lastEventTime: number, old: SpanNode): boolean {
  const endedNew = end !== OPEN;
  const endedOld = old.end !== OPEN;
  if (endedNew !== endedOld) return endedNew;
  if (eventCount !== old.eventCount) return eventCount > old.eventCount;
  if (lastEventTime !== old.lastEventTime) return lastEventTime > old.lastEventTime;
  if (endedNew && end !== old.end) return end > old.end;
  return false;
}

function eventOrder(a: EventNode, b: EventNode): number {
  return (
    a.time - b.time ||
    a.span.start - b.span.start ||
    (a.span.spanId < b.span.spanId ? -1 : a.span.spanId > b.span.spanId ? 1 : 0) ||
    a.index - b.index
  );
}

function* allEvents(span: SpanNode): Iterable<EventNode> {
  yield* span.events;
  if (span.logEvents) yield* span.logEvents;
}

function removeFrom(map: Map<string, SpanNode[]>, key: string, span: SpanNode): void {
  const list = map.get(key);
  if (!list) return;
  const i = list.indexOf(span);
  if (i >= 0) list.splice(i, 1);
  if (list.length === 0) map.delete(key);
}

function sameAttrs(a: Attributes, b: Attributes): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) if (JSON.stringify(a[k]) !== JSON.stringify(b[k])) return false;
  return true;
}
