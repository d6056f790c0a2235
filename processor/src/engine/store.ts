/**
 * The graph store: keeps the newest version of every span, assigns events to tasks, and derives each
 * task's intervals of waiting, holding and issuing, with indices by resource.
 *
 * Order independence: which version of a span is kept depends only on the versions' contents (an ended
 * span beats any snapshot; among snapshots, more events, then later events), and a task's intervals are
 * derived from the union of its spans' events sorted by time. So the state after any sequence of inputs
 * is a function of the set of inputs: duplicates, reordering and stale snapshots change nothing.
 *
 * Cost: adding a span version touches only the tasks its events belong to. A new span whose events all
 * come after what its task had (how a live stream arrives) is derived onto the task's intervals (`append`);
 * anything else re-derives the task from all its events, once per detection pass however many spans of
 * a batch touched it. Nothing here walks the whole graph. The input records are not retained: a span keeps
 * its wait events in the compact form of events.ts.
 *
 * History (live processor only): `forget` drops spans that ended before a cutoff when nothing in the views
 * from the cutoff on can need them, so a long-running graph stays bounded.
 */
import { ATTR, EVENT, PROXY_COMPONENT } from '../../../schemas/index.js';
import type { AttrValue, Attributes, LogEventRecord, SpanEventRecord, SpanRecord } from '../model/span.js';
import { EventKinds, int, OtherTaskEvent, str, type EventKind, WaitEvent } from './events.js';
import { SpanLog } from './span-log.js';
import { SpanTable } from './span-table.js';
import {
  HoldIv,
  Instance,
  IssueIv,
  NOW,
  OPEN,
  SpanNode,
  type Tails,
  TaskNode,
  WaitIv,
  taskKey,
  type OrderEdge,
  type OrphanRelease,
  type Ready,
} from './model.js';

const WAIT_EVENTS: ReadonlySet<string> = new Set(Object.values(EVENT));

/** Things touched by an update, for incremental detection. */
export interface Touched {
  tasks: Set<TaskNode>;
  /** Waits ended by a timeout: seeds for finding deadlocks that timeouts broke. */
  timeouts: WaitIv[];
  /** Lock pairs whose order edges changed. */
  orderPairs: Set<string>;
  /**
   * Tasks that only lost requirements (a span without wait events ended or moved to another task): that
   * can end a deadlock they are in, never start one, so they are looked at again only if they are in one.
   */
  eased: Set<TaskNode>;
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
    return this.map.size !== 0 && this.map.has(key);
  }
}

const EMPTY: readonly never[] = Object.freeze([]);

/**
 * How often `forget` looks again at the spans it kept (unix ns of the cutoff): every 10 s. A span may so
 * outlive the history by up to that once nothing rests on it; looking on every pass would cost a pass
 * over all kept spans several times a second.
 */
const RECHECK_NS = 10e9;

/**
 * When a span kept at `cutoff` is looked at again: the next multiple of RECHECK_NS. All spans kept within
 * the same 10 s come up together, so spans that keep each other (a lock taken in one, released in
 * another) are looked at, and go, together.
 */
function recheckAt(cutoff: number): number {
  return (Math.floor(cutoff / RECHECK_NS) + 1) * RECHECK_NS;
}

function bool(v: AttrValue | undefined): boolean {
  return v === true || v === 'true';
}

/** Instances of one service: without an instance id, and by instance id. */
interface ServiceInstances {
  plain: Instance | undefined;
  byId: Map<string, Instance> | undefined;
}

// Scratch space of `derive`, reused from call to call (derive does not re-enter itself): a task's events
// and the intervals being built, so that deriving allocates only what it keeps.
const evScratch: WaitEvent[] = [];

/** What a derivation builds: the intervals, in the order their opening events came. */
interface Derivation {
  waits: WaitIv[];
  holds: HoldIv[];
  issues: IssueIv[] | undefined;
  orders: OrderEdge[] | undefined;
  orphans: OrphanRelease[] | undefined;
  readies: Ready[] | undefined;
}
const waitScratch: WaitIv[] = [];
const holdScratch: HoldIv[] = [];

/** The span store and its derived intervals. */
export class GraphStore {
  /** The newest version of every span. */
  readonly spans = new SpanTable();
  /** Tasks by instance, then task id. */
  private readonly tasks = new Map<string, Map<string, TaskNode>>();
  /** How many tasks there are. */
  taskCount = 0;
  /** Open waits and open holds in the graph, kept as tasks are derived (the gauges read them often). */
  openWaits = 0;
  openHolds = 0;

  /**
   * Holds by lock id and by pool name, the open ones apart from the ended ones: the present asks only for
   * open holds, and a busy pool has taken and given back a great many units within the history. Each
   * hold is in one of them (see `holdsAt`).
   */
  private readonly liveLockHolds = new MultiIndex<HoldIv>();
  private readonly livePoolHolds = new MultiIndex<HoldIv>();
  private readonly endedLockHolds = new MultiIndex<HoldIv>();
  private readonly endedPoolHolds = new MultiIndex<HoldIv>();
  readonly lockWaits = new MultiIndex<WaitIv>();
  /** pool waits and rpc waits that name the callee's intake pool. */
  readonly poolWaits = new MultiIndex<WaitIv>();
  readonly certIssues = new MultiIndex<IssueIv>();
  readonly certWaits = new MultiIndex<WaitIv>();
  /** cert.ready times by cert id. */
  readonly certReady = new MultiIndex<Ready>();
  /** task waits by each id in their task.wait.on list (a task id of their instance, or a span id). */
  readonly taskWaits = new MultiIndex<WaitIv>();
  /** Lock-order edges by `first \0 then`, derived afresh with each task's events. */
  private readonly orderIndex = new MultiIndex<OrderEdge>();
  /** Holds handed over, by the key of the span they rest at (or wait for, while it is unknown). */
  readonly handovers = new MultiIndex<HoldIv>();

  private readonly proxyServices: ReadonlySet<string>;
  private readonly services = new Map<string, ServiceInstances>();
  private readonly kinds = new EventKinds();

  private lastResource: Attributes | undefined = undefined;
  private lastInstance: Instance | undefined = undefined;

  /** Tasks whose events changed since the last `flush()`. */
  private readonly dirty = new Set<TaskNode>();
  /** Of those, the ones whose change needs a full derivation (anything but new events of new spans). */
  private readonly rebuild = new Set<TaskNode>();
  /** Of the others, their new events (see `append`). */
  private readonly appended = new Map<TaskNode, WaitEvent[]>();

  /** Spans to forget once they are older than the history (see `forget`): ended ones, and stale ones. */
  private readonly retirements = new SpanLog();
  /**
   * Spans `forget` kept because something still rests on them, by when to look at them again (see
   * `recheckAt`). Looking at every one of them on every pass would cost as much as they are many, each
   * time: a service with a leaked lock keeps its span for good.
   */
  private readonly kept = new SpanLog();
  /** Lock-order edges of forgotten spans (see `forget`), by `first \0 then`: at most two per pair. */
  private readonly pastOrders = new Map<string, OrderEdge[]>();

  constructor(proxyServices: readonly string[] = []) {
    this.proxyServices = new Set(proxyServices);
  }

  /** The tasks' edges that took `first`, then `then` while holding it, including forgotten spans' edges. */
  orderEdges(first: string, then: string): OrderEdge[] {
    const key = first + '\0' + then;
    return [...this.orderIndex.get(key), ...(this.pastOrders.get(key) ?? EMPTY)];
  }

  /**
   * Logs a span for `forget`: an ended version once it is kept, or an open one that went stale, at the
   * time that counts (its end, or when it was last observed). Only the live processor forgets, so only it
   * logs: `analyze` keeps everything.
   */
  retire(span: SpanNode, at: number): void {
    if (span.retiring) return;
    span.retiring = true;
    this.retirements.push(span, at);
  }

  /**
   * Forgets the spans logged by `retire` at a time before `cutoff`, where nothing in the views from
   * `cutoff` on can need them, and the tasks left with nothing. The views from `cutoff` on see only
   * intervals that end after it, so a span that ended before it matters only through what outlives it;
   * such a span is kept while:
   * - it is where a hold or a certificate issue began that is open, or ended after `cutoff`;
   * - it has a `cert.ready` while a wait for that certificate is open (the ready ends it);
   * - it has the release, check-in or ready that ended an interval begun in a span that stays (without it
   *   the lock would look held again), a hold its task inherited included;
   * - it is a retry attempt (`http.request.resend_count`) whose parent is open or ended after `cutoff`:
   *   the parent waits only for the newest attempt, so the attempts must stay to tell which that is.
   * A kept span is looked at again at the next multiple of `RECHECK_NS` (see `recheckAt`). Forgetting
   * only takes evidence away: what is forgotten can hide a deadlock older than the history, never make one
   * up (for input that comes within the history: an acquire that arrives after its release was forgotten
   * is a lock held for good). The lock-order edges of a forgotten span stay (two per lock pair), so an
   * inversion spread over more than the history is still found.
   *
   * With more than `maxSpans` spans, the oldest logged spans go too, as if the cutoff were later: the
   * history gets shorter rather than memory running out. Returns how many spans were forgotten, and the
   * cutoff in effect.
   */
  forget(requested: number, touched: Touched, maxSpans = Number.POSITIVE_INFINITY): { forgotten: number; cutoff: number } {
    const log = this.retirements;
    const due: SpanNode[] = [];
    let cutoff = requested;
    const take = (s: SpanNode) => {
      if (this.spans.get(s.traceId, s.spanId) !== s) return; // replaced by a newer version since
      if (s.end === OPEN && !s.stale) {
        s.retiring = false; // fresh again: logged anew if it goes stale or ends
        return;
      }
      if (s.end === OPEN && s.observedAt >= cutoff) {
        log.push(s, s.observedAt); // fresh again since it was logged, then stale again: from that time
        return;
      }
      due.push(s);
    };
    for (let at = log.oldestAt(); at !== undefined && (at < cutoff || this.spans.size - due.length > maxSpans); at = log.oldestAt()) {
      if (at >= cutoff) cutoff = at + 1; // over the size: the history gets shorter
      take(log.shift());
    }
    for (let at = this.kept.oldestAt(); at !== undefined && at <= cutoff; at = this.kept.oldestAt()) take(this.kept.shift());
    if (due.length === 0) return { forgotten: 0, cutoff };
    this.flush(touched);
    // Spans that began an interval still in view, or that hold a ready or a release something rests on.
    const kept = new Set<SpanNode>();
    const withEvents = new Set<SpanNode>();
    // The tasks with events in due spans, and the latest of those events: the intervals they began began
    // by then. Mostly before the cutoff, since the spans ended before it; but an event may come after
    // its span's end.
    const tasks = new Map<TaskNode, number>();
    for (const s of due) {
      if (s.events === undefined) continue;
      withEvents.add(s);
      for (let e: WaitEvent | undefined = s.events; e !== undefined; e = e.next) {
        const last = tasks.get(e.task);
        if (last === undefined || e.time > last) tasks.set(e.task, e.time);
        if (e.kind.name === EVENT.CERT_READY && e.id !== undefined) {
          for (const w of this.certWaits.get(e.id)) if (w.end === OPEN || w.end >= cutoff) kept.add(s);
        }
      }
    }
    const inView = (iv: { span: SpanNode; end: number }) => {
      if ((iv.end === OPEN || iv.end >= cutoff) && withEvents.has(iv.span)) kept.add(iv.span);
    };
    // A task's intervals are in the order they began, and those of due spans began by the latest of their
    // events: a long-lived task is looked through only as far as that, not through its whole history.
    for (const [t, last] of tasks) {
      for (let h = t.holds; h !== undefined && h.start <= last; h = h.next) inView(h);
      for (const i of t.issues) {
        if (i.start > last) break;
        inView(i);
      }
    }
    for (const s of due) {
      if (!kept.has(s) && s.attempt >= 0) {
        const parent = this.parentOf(s);
        if (parent !== undefined && (parent.end === OPEN || parent.end >= cutoff)) kept.add(s);
      }
    }
    this.keepClosers(due, withEvents, kept, tasks);
    let forgotten = 0;
    const gone = new Set<SpanNode>();
    // The tasks that lose spans, and how many each.
    const losing = new Map<TaskNode, number>();
    // The events of the spans that go, by their task: what each task's intervals lose.
    const lost = new Map<TaskNode, WaitEvent[]>();
    for (const s of due) {
      if (kept.has(s)) {
        this.kept.push(s, recheckAt(cutoff)); // still logged (retiring): looked at again from then on
        continue;
      }
      gone.add(s);
      for (const t of tasksOf(s, [])) {
        for (const o of t.orders) if (o.span === s) this.keepOrder(o);
        losing.set(t, (losing.get(t) ?? 0) + 1);
      }
      for (let e = s.events; e !== undefined; e = e.next) {
        const list = lost.get(e.task);
        if (list === undefined) lost.set(e.task, [e]);
        else list.push(e);
      }
      this.spans.delete(s);
      forgotten++;
    }
    const emptied: TaskNode[] = [];
    for (const [t, count] of losing) {
      t.detachAll(gone, count);
      if (t.spanCount === 0) emptied.push(t);
    }
    for (const [t, evs] of lost) this.trim(t, gone, evs);
    for (const s of gone) this.resolveHandovers(s, touched);
    this.flush(touched);
    // A task left with no span has no waits or holds of its own; one that inherited none goes.
    for (const t of emptied) {
      if (t.spanCount !== 0 || t.inherited.length !== 0) continue;
      if (!t.spanTask && t.inst.tasks.get(t.taskId) === t) t.inst.tasks.delete(t.taskId);
      this.taskCount--;
      touched.tasks.delete(t);
      touched.eased.delete(t);
    }
    return { forgotten, cutoff };
  }

  /**
   * Takes out of a task's intervals those that began in spans being forgotten (`gone`), and what its
   * events there (`evs`) left: certificate readies, releases of locks it did not take. What `forget` lets
   * go ended before the history (else the span would stay), and began by the latest of those events (most
   * often before the history too; an event may come after its span's end), so what is left is what deriving
   * the task afresh would give, as far as any view from the history on can see: without deriving again,
   * which would cost as much as the task's whole history, each time a few of its spans go.
   */
  private trim(task: TaskNode, gone: ReadonlySet<SpanNode>, evs: readonly WaitEvent[]): void {
    // A thread's tails and marks follow: one that goes gives way to the last one before it.
    const tails = task.tails;
    // In the order they began: those of spans that go began by the latest of the events that go.
    let last = Number.NEGATIVE_INFINITY;
    for (const e of evs) if (e.time > last) last = e.time;
    let prevW: WaitIv | undefined;
    for (let w = task.waits; w !== undefined && w.start <= last; w = w.next) {
      if (!gone.has(w.span)) {
        prevW = w;
        continue;
      }
      if (w.end === OPEN) {
        this.openWaits--;
        task.openWaitCount--;
      }
      if (tails !== undefined && w.next === undefined) tails.wait = prevW;
      if (tails !== undefined && tails.waitMark === w) tails.waitMark = prevW;
      this.unindexWait(w);
      if (prevW === undefined) task.waits = w.next;
      else prevW.next = w.next;
    }
    let prevH: HoldIv | undefined;
    for (let h = task.holds; h !== undefined && h.start <= last; h = h.next) {
      if (!gone.has(h.span)) {
        prevH = h;
        continue;
      }
      if (h.end === OPEN) {
        this.openHolds--;
        if (tails !== undefined) tails.openHolds--;
      }
      if (tails !== undefined && h.next === undefined) tails.hold = prevH;
      if (tails !== undefined && tails.holdMark === h) tails.holdMark = prevH;
      this.holdIndex(h).delete(h.res, h);
      if (h.handover) this.dropHandover(h);
      if (prevH === undefined) task.holds = h.next;
      else prevH.next = h.next;
    }
    if (task.issues.some((i) => gone.has(i.span))) {
      for (const i of task.issues) if (gone.has(i.span)) this.certIssues.delete(i.cert, i);
      task.issues = task.issues.filter((i) => !gone.has(i.span));
    }
    if (task.orders.some((o) => gone.has(o.span))) {
      for (const o of task.orders) if (gone.has(o.span)) this.orderIndex.delete(orderKey(o), o);
      task.orders = task.orders.filter((o) => !gone.has(o.span));
    }
    const was = (name: string, id: string, time: number) => evs.some((e) => e.kind.name === name && e.id === id && e.time === time);
    if (task.readies?.length) {
      for (const r of task.readies) if (was(EVENT.CERT_READY, r.cert, r.time)) this.certReady.delete(r.cert, r);
      task.readies = task.readies.filter((r) => !was(EVENT.CERT_READY, r.cert, r.time));
    }
    if (task.orphanReleases.length) task.orphanReleases = task.orphanReleases.filter((r) => !was(EVENT.LOCK_RELEASE, r.lock, r.time));
  }

  /**
   * Adds to `kept` the due spans whose events ended an interval that began in a span that stays (a lock
   * taken in a long-running span and released in a child span that ended long ago): without the release
   * the hold would be taken to be held again. Until nothing changes, since a kept span keeps the intervals
   * that began in it.
   */
  private keepClosers(due: SpanNode[], withEvents: Set<SpanNode>, kept: Set<SpanNode>, tasks: ReadonlyMap<TaskNode, number>): void {
    // Releases, check-ins and readies of the due spans, by task: holds and issues keep only their end time.
    const closers = new Map<TaskNode, WaitEvent[]>();
    for (const s of due) {
      for (let e = s.events; e !== undefined; e = e.next) {
        const n = e.kind.name;
        if (n !== EVENT.LOCK_RELEASE && n !== EVENT.POOL_CHECKIN && n !== EVENT.CERT_READY) continue;
        const list = closers.get(e.task);
        if (list === undefined) closers.set(e.task, [e]);
        else list.push(e);
      }
    }
    const goes = (s: SpanNode) => withEvents.has(s) && !kept.has(s);
    const closedBy = (t: TaskNode, res: string, end: number): SpanNode | undefined => {
      for (const e of closers.get(t) ?? EMPTY) if (e.id === res && e.time === end) return e.span;
      return undefined;
    };
    for (let changed = true; changed; ) {
      changed = false;
      const keep = (closer: SpanNode | undefined, origin: SpanNode) => {
        if (closer !== undefined && closer !== origin && goes(closer) && !goes(origin)) {
          kept.add(closer);
          changed = true;
        }
      };
      // An interval a due span closed began before the event that closed it (see `forget`).
      for (const [t, last] of tasks) {
        for (let w = t.waits; w !== undefined && w.start <= last; w = w.next) keep(w.endedIn, w.span);
        for (let h = t.holds; h !== undefined && h.start <= last; h = h.next) if (h.end !== OPEN) keep(closedBy(t, h.res, h.end), h.span);
        // A hold handed over to this task, and released by it.
        for (const h of t.inherited) if (h.end !== OPEN) keep(closedBy(t, h.res, h.end), h.span);
        for (const i of t.issues) if (i.end !== OPEN && i.start <= last) keep(closedBy(t, i.cert, i.end), i.span);
      }
    }
  }

  /** Keeps the lock-order edge of a span being forgotten: two per pair, of different tasks. */
  private keepOrder(o: OrderEdge): void {
    const key = orderKey(o);
    const past = this.pastOrders.get(key);
    if (past === undefined) this.pastOrders.set(key, [o]);
    else if (past.length < 2 && !past.some((p) => taskKey(p.task) === taskKey(o.task))) past.push(o);
  }


  /**
   * Adds one span version, unless an equal or newer version was already kept. Returns the version kept
   * now (this one, or the one before).
   */
  addSpan(rec: SpanRecord, observedAt: number, touched: Touched): SpanNode {
    const old = this.spans.get(rec.traceId, rec.spanId);
    const end = rec.endTimeUnixNano > 0 ? rec.endTimeUnixNano : OPEN;
    let lastEventTime = 0;
    for (const e of rec.events) if (e.timeUnixNano > lastEventTime) lastEventTime = e.timeUnixNano;
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
        return old;
      }
    }
    const inst = this.instance(rec.resource);
    const attrs = rec.attributes;
    const spanTaskId = str(attrs[ATTR.TASK_ID]) ?? str(attrs[ATTR.THREAD_ID]) ?? firstEventTaskId(rec.events);
    // A span without task attributes is its own task; its versions share the one made for the first.
    const task =
      spanTaskId !== undefined
        ? this.task(inst, spanTaskId)
        : old !== undefined && old.task.spanTask && old.task.inst === inst
          ? old.task
          : this.spanTask(inst, rec.spanId);
    const proxy = attrs[ATTR.COMPONENT] === PROXY_COMPONENT || this.proxyServices.has(inst.service);
    const resend = attrs[ATTR.HTTP_RESEND_COUNT];
    const span = new SpanNode(
      rec.traceId,
      rec.spanId,
      rec.parentSpanId || undefined,
      rec.name,
      rec.startTimeUnixNano,
      end,
      task,
      rec.events.length,
      lastEventTime,
      Math.max(observedAt, old?.observedAt ?? 0),
      resend === undefined ? -1 : Math.max(0, int(resend)),
      bool(attrs[ATTR.TASK_DETACHED]),
      false,
    );
    let tail: WaitEvent | undefined;
    if (!proxy) {
      for (const e of rec.events) {
        if (!WAIT_EVENTS.has(e.name)) continue;
        const ev = this.event(e.name, e.timeUnixNano, e.attributes, false, span);
        if (tail === undefined) span.events = ev;
        else tail.next = ev;
        tail = ev;
      }
    }
    // Log events that arrived before this version named their task from the log record alone; the
    // span's own task attributes now apply to them. One the version carries as a span event too is that
    // event (as a log record that comes after the span is: see `addLogEvent`).
    for (let e = old?.events; e !== undefined; e = e.next) {
      if (!e.kind.log || (!proxy && rec.events.some((r) => r.name === e.name && r.timeUnixNano === e.time && e.sameAttributes(r.attributes)))) continue;
      const ev = this.newEvent(e.kind, e.time, e.res, span);
      span.logged = true;
      if (tail === undefined) span.events = ev;
      else tail.next = ev;
      tail = ev;
    }

    this.replace(old, span, touched);
    return span;
  }

  /** Adds one wait event that arrived as a log record. Returns its span, or undefined for a duplicate. */
  addLogEvent(rec: LogEventRecord, observedAt: number, touched: Touched): SpanNode | undefined {
    if (!WAIT_EVENTS.has(rec.name)) return undefined;
    let span = this.spans.get(rec.traceId, rec.spanId);
    if (span) {
      for (let e = span.events; e !== undefined; e = e.next) {
        if (e.name === rec.name && e.time === rec.timeUnixNano && e.sameAttributes(rec.attributes)) return undefined;
      }
    } else {
      const inst = this.instance(rec.resource);
      const taskId = str(rec.attributes[ATTR.TASK_ID]) ?? str(rec.attributes[ATTR.THREAD_ID]);
      const task = taskId === undefined ? this.spanTask(inst, rec.spanId) : this.task(inst, taskId);
      span = new SpanNode(rec.traceId, rec.spanId, undefined, '', rec.timeUnixNano, OPEN, task, 0, 0, observedAt, -1, false, true);
      this.spans.set(span);
      this.noteOpenChildren(undefined, span);
      task.attach(span);
      // Holds handed over towards this span id were waiting for it to appear.
      this.resolveHandovers(span, touched);
    }
    span.observedAt = Math.max(span.observedAt, observedAt);
    if (span.placeholder && rec.timeUnixNano < span.start) span.start = rec.timeUnixNano;
    const node = this.event(rec.name, rec.timeUnixNano, rec.attributes, true, span);
    span.logged = true;
    let tail = span.events;
    while (tail?.next !== undefined) tail = tail.next;
    if (tail === undefined) span.events = node;
    else tail.next = node;
    node.task.attach(span);
    this.markAppend(node, touched);
    return span;
  }

  /** Marks a span's waits and holds as untrusted (no fresh snapshot came), or trusted again. */
  setStale(span: SpanNode, stale: boolean, touched: Touched): void {
    if (span.stale === stale) return;
    span.stale = stale;
    this.rederive(span, touched);
  }

  private rederive(span: SpanNode, touched: Touched): void {
    for (const t of tasksOf(span, [])) this.markDirty(t, touched);
    this.resolveHandovers(span, touched);
    touched.tasks.add(span.task);
  }

  /** One wait event of `span`, resolved to its task. */
  private event(name: string, time: number, attrs: Attributes, log: boolean, span: SpanNode): WaitEvent {
    const res = EventKinds.idOf(name, attrs);
    const kind = this.kinds.of(name, attrs, res !== undefined, log);
    return this.newEvent(kind, time, res, span);
  }

  /** An event of `span`, of the task its attributes name, else of the span's. */
  private newEvent(kind: EventKind, time: number, res: string | undefined, span: SpanNode): WaitEvent {
    const own = kind.taskId;
    const spanTask = span.task;
    if (own === undefined || own === spanTask.taskId) return new WaitEvent(kind, time, res, span);
    return new OtherTaskEvent(kind, time, res, span, this.task(spanTask.inst, own));
  }

  /** The service instance a resource names. */
  private instance(res: Attributes): Instance {
    // The spans of a batch share their resource's attributes object (decoders make one per resource):
    // the instance found for the last one is most often the one asked for.
    if (res === this.lastResource) return this.lastInstance!;
    const inst = this.instanceOf(res);
    this.lastResource = res;
    this.lastInstance = inst;
    return inst;
  }

  private instanceOf(res: Attributes): Instance {
    const service = str(res[ATTR.SERVICE_NAME]) ?? 'unknown_service';
    const instanceId = str(res[ATTR.SERVICE_INSTANCE_ID]);
    let s = this.services.get(service);
    if (!s) this.services.set(service, (s = { plain: undefined, byId: undefined }));
    if (instanceId === undefined) return (s.plain ??= this.newInstance(service, service, undefined));
    let inst = s.byId?.get(instanceId);
    if (!inst) (s.byId ??= new Map()).set(instanceId, (inst = this.newInstance(service + '/' + instanceId, service, instanceId)));
    return inst;
  }

  private newInstance(name: string, service: string, instanceId: string | undefined): Instance {
    // Two instances may share a name ("a/b" without an instance id, "a" with instance "b"), and with it
    // their tasks; a task keeps the instance it was first seen in.
    let tasks = this.tasks.get(name);
    if (!tasks) this.tasks.set(name, (tasks = new Map()));
    return new Instance(name, service, instanceId, tasks);
  }

  /** The task a task id names in an instance. */
  private task(inst: Instance, taskId: string): TaskNode {
    let t = inst.tasks.get(taskId);
    if (!t) {
      t = new TaskNode(inst, taskId, false);
      inst.tasks.set(taskId, t);
      this.taskCount++;
    }
    return t;
  }

  /**
   * A new span-task: the task of a span without task attributes. It is found through its span, not
   * registered by id (most spans are their own task, and an index of them would cost each a map entry).
   */
  private spanTask(inst: Instance, spanId: string): TaskNode {
    this.taskCount++;
    return new TaskNode(inst, spanId, true);
  }

  /** The children of a span. */
  childrenOf(span: SpanNode): readonly SpanNode[] {
    return this.spans.childrenOf(span);
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
    const t = this.tasks.get(instance)?.get(id);
    if (t) return { task: t, span: undefined };
    const span = this.spans.get(traceId, id);
    if (span) return { task: span.task, span };
    return undefined;
  }

  private replace(old: SpanNode | undefined, span: SpanNode, touched: Touched): void {
    let affected = EMPTY as unknown as TaskNode[];
    if (old) {
      affected = tasksOf(old, [], true);
      for (const t of affected) t.detach(old);
      // A span-task left without its span (a log record's placeholder, now a span of a named task) is
      // gone: nothing finds it any more.
      if (old.task.spanTask && old.task !== span.task && old.task.spanCount === 0 && old.task.inherited.length === 0) this.taskCount--;
    }
    this.spans.set(span);
    this.noteOpenChildren(old, span);
    span.task.attachNew(span);
    for (let e = span.events; e !== undefined; e = e.next) e.task.attachNew(span);
    if (old === undefined && span.events !== undefined) {
      // A new span: its events are new to their tasks.
      for (let e: WaitEvent | undefined = span.events; e !== undefined; e = e.next) this.markAppend(e, touched);
      touched.tasks.add(span.task);
    } else if (span.events !== undefined || old?.events !== undefined) {
      for (const t of tasksOf(span, affected)) this.markDirty(t, touched);
    } else {
      // No wait events, now or before: nothing to derive (most spans); an open one is still a hop that
      // others may wait through, so detection looks at it.
      // An ended one eases what it held together, if it was seen before: one that arrives already ended
      // never added an edge (the common case, and the cheap one).
      if (span.end === OPEN) touched.tasks.add(span.task);
      else if (old !== undefined) touched.eased.add(span.task);
      if (old !== undefined && old.task !== span.task) touched.eased.add(old.task);
    }
    // Holds resting at or waiting for this span move when it appears or ends.
    this.resolveHandovers(span, touched);
    // The parent's task waits for this span while it is open, and is eased when it ends; a span that
    // arrives already ended, with no wait events, changes nothing for its parent.
    if (span.end === OPEN || old !== undefined || span.events !== undefined) {
      const parent = this.parentOf(span);
      if (parent) {
        touched.tasks.add(parent.task);
        if (span.end === OPEN) parent.noteOpenChild();
      }
    }
  }

  /**
   * Keeps `SpanNode.openChildSeen` true of every span with an open child, for the present's parent/child
   * waits (requirements.ts), which then skip the trace of a span without one: a long-lived thread's open
   * spans are looked at on every pass that touches the thread. An open child that arrives marks its parent
   * (`replace`); a new version takes its old version's mark; an open span that comes first looks once for
   * the open children that came before it. A span that arrives ended can never wait for a child.
   */
  private noteOpenChildren(old: SpanNode | undefined, span: SpanNode): void {
    // An open version never replaces an ended one (`newerVersion`), so a span that had a version looked already.
    if (old !== undefined) {
      if (old.openChildSeen) span.noteOpenChild();
    } else if (span.end === OPEN && this.spans.hasOpenChild(span)) span.noteOpenChild();
  }

  /**
   * Re-derives a task's intervals from the events of its spans: all of them, sorted by time. The append
   * path (`append`) takes the common case of a live stream without it.
   */
  derive(task: TaskNode, touched: Touched): void {
    this.unindex(task);
    task.tails = undefined;
    touched.tasks.add(task);
    const evs = evScratch;
    const st = this.build(waitScratch, holdScratch);
    evs.length = 0;
    eventsOf(task, Number.NEGATIVE_INFINITY, evs);
    sortEvents(evs);
    this.apply(task, evs, st);
    const waits = st.waits;
    const holds = st.holds;
    let frontier: FrontierBy = evs.length > 0 ? evs[evs.length - 1] : undefined;
    // The end of a span ends the waits recorded on it; a span-task's open holds pass to its nearest open
    // ancestor in the same service instance.
    for (const w of waits) frontier = endWithSpan(w, frontier);
    if (task.spanTask) {
      for (const h of holds) {
        if (h.end === OPEN && h.span.end !== OPEN && h.span.task === task) {
          h.handover = { at: h.span.end, heir: undefined, rest: undefined };
        }
      }
    }
    task.waits = linked(waits);
    task.holds = linked(holds);
    task.issues = st.issues ?? EMPTY;
    task.orders = st.orders ?? EMPTY;
    const releasesBefore = task.orphanReleases;
    task.orphanReleases = st.orphans ?? EMPTY;
    if (task.inherited.length !== 0 && !sameReleases(releasesBefore, task.orphanReleases)) this.releasesChanged(task, touched);
    task.readies = st.readies;
    task.frontierBy = frontier;
    evs.length = waits.length = holds.length = 0; // not to keep what they held alive
    this.index(task, touched);
  }

  /**
   * Derives the events `evs` of new spans of a task onto what it had: the same intervals a full
   * derivation gives, when every new event comes after every event derived before (and after every span
   * end that ended a wait), which is how a live stream mostly arrives. Only the new intervals are indexed,
   * so the cost is that of the new events, not of the task's history. `evs` is sorted.
   */
  private append(task: TaskNode, evs: WaitEvent[], touched: Touched): void {
    touched.tasks.add(task);
    // The open intervals, as the full derivation's arrays would hold them at this point (it looks only at
    // open ones), and the tails to link new intervals to.
    const st = this.build(waitScratch, holdScratch);
    // A thread keeps its tails: with no open wait or hold, its history is not walked at all.
    const tails = task.tails;
    let waitTail = tails?.wait;
    let holdTail = tails?.hold;
    if (tails === undefined || task.openWaitCount !== 0) {
      // Those up to the mark have ended.
      for (let w = tails?.waitMark !== undefined ? tails.waitMark.next : task.waits; w !== undefined; w = w.next) {
        if (w.open) st.waits.push(w);
        waitTail = w;
      }
    }
    if (tails === undefined || tails.openHolds !== 0) {
      for (let h = tails?.holdMark !== undefined ? tails.holdMark.next : task.holds; h !== undefined; h = h.next) {
        if (h.end === OPEN) st.holds.push(h);
        holdTail = h;
      }
    }
    const oldWaits = st.waits.length;
    const oldHolds = st.holds.length;
    const oldIssues = task.issues.length;
    const oldOrders = task.orders.length;
    const oldReadies = task.readies?.length ?? 0;
    if (oldIssues) st.issues = [...task.issues];
    if (oldOrders) st.orders = [...task.orders];
    if (task.orphanReleases.length) st.orphans = [...task.orphanReleases];
    if (task.readies) st.readies = [...task.readies];
    this.apply(task, evs, st);
    let frontier: FrontierBy = task.frontierBy;
    if (evs[evs.length - 1].time > timeOf(frontier)) frontier = evs[evs.length - 1];
    for (const w of st.waits) frontier = endWithSpan(w, frontier);
    // Link and index what is new; a wait that was open and now timed out is a seed as a new one is.
    for (let i = 0; i < oldWaits; i++) if (st.waits[i].timedOut) touched.timeouts.push(st.waits[i]);
    for (let i = oldWaits; i < st.waits.length; i++) {
      const w = st.waits[i];
      if (waitTail === undefined) task.waits = w;
      else waitTail.next = w;
      waitTail = w;
      this.indexWait(w, touched);
    }
    for (let i = oldHolds; i < st.holds.length; i++) {
      const h = st.holds[i];
      if (holdTail === undefined) task.holds = h;
      else holdTail.next = h;
      holdTail = h;
      this.holdIndex(h).add(h.res, h);
    }
    for (let i = 0; i < oldHolds; i++) {
      const h = st.holds[i];
      if (h.end === OPEN) continue;
      // Released by the new events: from the open holds to the ended ones.
      this.liveHolds(h).delete(h.res, h);
      this.holdIndex(h).add(h.res, h);
    }
    // Open waits now, of those that were open and the new ones (nothing closed was reopened).
    this.settle(task, st, frontier, oldIssues, oldOrders, oldReadies, touched);
    for (const h of st.holds) if (h.end === OPEN) this.openHolds++;
    this.openWaits -= oldWaits;
    this.openHolds -= oldHolds;
    // What was ended stays so: the marks hold.
    task.tails = tailsOf(waitTail, holdTail, st.holds, tails);
    st.waits.length = st.holds.length = 0;
  }

  /**
   * Derives new events `evs` that do not all come after what a task has derived (the spans of a thread
   * arrive out of order from several partitions; a parent span, exported after its children, has events
   * before theirs): from the earliest of them on, not from the start. What the task derived before that
   * time stays as it is; what began after it is dropped; what was open at that time, or ended after it,
   * is opened again; and the events from that time on, old and new, are applied to that state. The result
   * is that of a full derivation, as the apply of every event before that time would leave the same state.
   * Returns false, having changed nothing, where the new events are of a stale span (or not found among
   * the task's): `derive` then does it all.
   */
  private rewind(task: TaskNode, evs: readonly WaitEvent[], touched: Touched): boolean {
    let t0 = Number.POSITIVE_INFINITY;
    for (const e of evs) {
      if (e.span.stale) return false;
      if (e.time < t0) t0 = e.time;
    }
    // The events from t0 on, new and old: all of them, old ones at t0 too, since those may come before or
    // after a new one there. The state is taken back to what the events before t0 left.
    const suffix = evScratch;
    suffix.length = 0;
    eventsOf(task, t0, suffix);
    // The new events are among them (their spans are the task's); if not, derive the task whole.
    if (suffix.length === 0) return false;
    sortEvents(suffix);
    touched.tasks.add(task);
    const st = this.build(waitScratch, holdScratch);
    // Waits: those begun before t0 stay in the list; of them, the ones open at t0 (open now, or ended by an
    // event or a span end from t0 on) are open again. Their index does not depend on their end.
    this.openWaits -= task.openWaitCount;
    // Those up to a mark ended before t0 are not looked at; the mark moves on over those that ended before
    // t0 and come first (they stay as they are).
    const tails = task.tails;
    const marks: Marks = { waitMark: undefined, waitMarkAt: Number.NEGATIVE_INFINITY, holdMark: undefined, holdMarkAt: Number.NEGATIVE_INFINITY };
    if (tails?.waitMark !== undefined && tails.waitMarkAt < t0) {
      marks.waitMark = tails.waitMark;
      marks.waitMarkAt = tails.waitMarkAt;
    }
    if (tails?.holdMark !== undefined && tails.holdMarkAt < t0) {
      marks.holdMark = tails.holdMark;
      marks.holdMarkAt = tails.holdMarkAt;
    }
    let waitTail: WaitIv | undefined = marks.waitMark;
    let marking = true;
    for (let w = marks.waitMark !== undefined ? marks.waitMark.next : task.waits; w !== undefined; w = w.next) {
      if (w.start >= t0) {
        marking = false;
        this.unindexWait(w);
        continue;
      }
      waitTail = w;
      const end = w.end;
      if (end >= t0) {
        marking = false;
        w.reopen();
        st.waits.push(w);
      } else if (marking) {
        marks.waitMark = w;
        if (end > marks.waitMarkAt) marks.waitMarkAt = end;
      }
    }
    const reopenedWaits = st.waits.length;
    // Holds likewise; an open one is in the index of open holds, so each comes out of its index first.
    let holdTail: HoldIv | undefined = marks.holdMark;
    marking = true;
    for (let h = marks.holdMark !== undefined ? marks.holdMark.next : task.holds; h !== undefined; h = h.next) {
      if (h.start < t0) holdTail = h;
      if (h.start < t0 && h.end < t0) {
        if (marking) {
          marks.holdMark = h;
          if (h.end > marks.holdMarkAt) marks.holdMarkAt = h.end;
        }
        continue;
      }
      marking = false;
      if (h.end === OPEN) this.openHolds--;
      this.holdIndex(h).delete(h.res, h);
      if (h.start < t0) {
        h.end = OPEN;
        h.downgradeFrom(t0);
        st.holds.push(h);
      }
    }
    const reopenedHolds = st.holds.length;
    const issues = task.issues.filter((i) => i.start < t0);
    for (const i of task.issues) {
      if (i.start >= t0) this.certIssues.delete(i.cert, i);
      else if (i.end >= t0) i.end = OPEN;
    }
    const orders = task.orders.filter((o) => o.time < t0);
    for (const o of task.orders) if (o.time >= t0) this.orderIndex.delete(orderKey(o), o);
    const readies = task.readies?.filter((r) => r.time < t0);
    for (const r of task.readies ?? EMPTY) if (r.time >= t0) this.certReady.delete(r.cert, r);
    const orphans = task.orphanReleases.filter((r) => r.time < t0);
    if (issues.length) st.issues = issues;
    if (orders.length) st.orders = orders;
    if (orphans.length) st.orphans = orphans;
    if (readies?.length) st.readies = readies;
    const oldIssues = issues.length;
    const oldOrders = orders.length;
    const oldReadies = readies?.length ?? 0;

    this.apply(task, suffix, st);
    let frontier: FrontierBy = suffix[suffix.length - 1];
    for (const w of st.waits) frontier = endWithSpan(w, frontier);

    for (let i = 0; i < reopenedWaits; i++) if (st.waits[i].timedOut) touched.timeouts.push(st.waits[i]);
    const firstNewWait = linked(st.waits.slice(reopenedWaits));
    if (waitTail === undefined) task.waits = firstNewWait;
    else waitTail.next = firstNewWait;
    for (let i = reopenedWaits; i < st.waits.length; i++) this.indexWait(st.waits[i], touched);
    const firstNewHold = linked(st.holds.slice(reopenedHolds));
    if (holdTail === undefined) task.holds = firstNewHold;
    else holdTail.next = firstNewHold;
    for (const h of st.holds) {
      if (h.end === OPEN) this.openHolds++;
      this.holdIndex(h).add(h.res, h);
    }
    this.settle(task, st, frontier, oldIssues, oldOrders, oldReadies, touched);
    const lastWait = st.waits.length > reopenedWaits ? st.waits[st.waits.length - 1] : waitTail;
    const lastHold = st.holds.length > reopenedHolds ? st.holds[st.holds.length - 1] : holdTail;
    task.tails = tailsOf(lastWait, lastHold, st.holds, marks);
    suffix.length = st.waits.length = st.holds.length = 0;
    return true;
  }

  /**
   * Ends an append or a rewind: indexes the issues, lock-order edges and readies the derivation added
   * after the first `oldIssues`, `oldOrders` and `oldReadies` it began with, keeps them, its releases and
   * its frontier on the task, and counts the waits open among `st.waits` (every wait that can be open).
   */
  private settle(
    task: TaskNode,
    st: Derivation,
    frontier: FrontierBy,
    oldIssues: number,
    oldOrders: number,
    oldReadies: number,
    touched: Touched,
  ): void {
    if (st.issues) for (let i = oldIssues; i < st.issues.length; i++) this.certIssues.add(st.issues[i].cert, st.issues[i]);
    if (st.orders) for (let i = oldOrders; i < st.orders.length; i++) this.indexOrder(st.orders[i], touched);
    if (st.readies) for (let i = oldReadies; i < st.readies.length; i++) this.certReady.add(st.readies[i].cert, st.readies[i]);
    task.issues = st.issues ?? EMPTY;
    task.orders = st.orders ?? EMPTY;
    const releasesBefore = task.orphanReleases;
    task.orphanReleases = st.orphans ?? EMPTY;
    if (task.inherited.length !== 0 && !sameReleases(releasesBefore, task.orphanReleases)) this.releasesChanged(task, touched);
    task.readies = st.readies;
    task.frontierBy = frontier;
    let open = 0;
    for (const w of st.waits) if (w.end === OPEN) open++;
    task.openWaitCount = open;
    this.openWaits += open;
  }

  /** The state of a derivation, on the given scratch arrays. */
  private build(waits: WaitIv[], holds: HoldIv[]): Derivation {
    waits.length = holds.length = 0;
    return { waits, holds, issues: undefined, orders: undefined, orphans: undefined, readies: undefined };
  }

  /** Applies a task's events, in order, to the intervals being derived. */
  private apply(task: TaskNode, evs: readonly WaitEvent[], st: Derivation): void {
    for (const e of evs) {
      const k = e.kind;
      switch (k.name) {
        case EVENT.LOCK_WAIT: {
          const id = e.id;
          if (id === undefined || openWait(st.waits, 'lock', id, e.time)) break;
          st.waits.push(new WaitIv(e));
          break;
        }
        case EVENT.LOCK_ACQUIRE: {
          const id = e.id;
          if (id === undefined) break;
          const w = openWait(st.waits, 'lock', id, e.time);
          w?.endWith(e);
          const mode = k.mode;
          // Lock-order edges come from acquisitions: a wait that closes a cycle is a deadlock, reported
          // as one, and a wait that ends in an acquire records its edge then.
          st.orders = recordOrder(task, st.holds, st.orders, e, id, mode);
          const h = openHold(st.holds, 'lock', id);
          if (h) {
            // A re-entrant acquire, or an upgrade from shared: one hold, in the stronger mode.
            h.upgrade(mode, e.time);
            break;
          }
          st.holds.push(new HoldIv(e, k.lockKind === undefined && w?.lockKind !== undefined ? w : undefined));
          break;
        }
        case EVENT.LOCK_RELEASE: {
          const id = e.id;
          if (id === undefined) break;
          const h = openHold(st.holds, 'lock', id);
          if (h) h.end = e.time;
          else (st.orphans ??= []).push({ lock: id, time: e.time });
          break;
        }
        case EVENT.LOCK_TIMEOUT: {
          const id = e.id;
          const w = id === undefined ? undefined : openWait(st.waits, 'lock', id, e.time);
          w?.endWith(e);
          break;
        }
        case EVENT.POOL_WAIT: {
          const id = e.id;
          if (id === undefined || openWait(st.waits, 'pool', id, e.time)) break;
          st.waits.push(new WaitIv(e));
          break;
        }
        case EVENT.POOL_CHECKOUT: {
          const id = e.id;
          if (id === undefined) break;
          const w = openWait(st.waits, 'pool', id, e.time);
          w?.endWith(e);
          st.holds.push(new HoldIv(e, k.size === 0 && w !== undefined && w.size !== 0 ? w : undefined));
          break;
        }
        case EVENT.POOL_CHECKIN: {
          const id = e.id;
          if (id === undefined) break;
          for (let i = st.holds.length - 1; i >= 0; i--) {
            const h = st.holds[i];
            if (h.end === OPEN && h.kind === 'pool' && h.res === id) {
              h.end = e.time;
              break;
            }
          }
          break;
        }
        case EVENT.POOL_TIMEOUT: {
          const id = e.id;
          const w = id === undefined ? undefined : openWait(st.waits, 'pool', id, e.time);
          w?.endWith(e);
          break;
        }
        case EVENT.RPC_WAIT: {
          if (openRpcWait(st.waits, e.span, e.time)) break;
          st.waits.push(new WaitIv(e));
          break;
        }
        case EVENT.RPC_DONE:
        case EVENT.RPC_TIMEOUT: {
          const w = openRpcWait(st.waits, e.span, e.time);
          w?.endWith(e);
          break;
        }
        case EVENT.CERT_WAIT: {
          const id = e.id;
          if (id === undefined || openWait(st.waits, 'cert', id, e.time)) break;
          st.waits.push(new WaitIv(e));
          break;
        }
        case EVENT.CERT_ISSUE: {
          const id = e.id;
          if (id === undefined || st.issues?.some((i) => i.end === OPEN && i.cert === id)) break;
          (st.issues ??= []).push(new IssueIv(e));
          break;
        }
        case EVENT.CERT_READY: {
          const id = e.id;
          if (id === undefined) break;
          (st.readies ??= []).push({ cert: id, time: e.time });
          if (st.issues) for (const i of st.issues) if (i.end === OPEN && i.cert === id) i.end = e.time;
          const w = openWait(st.waits, 'cert', id, e.time);
          w?.endWith(e);
          break;
        }
        case EVENT.CERT_TIMEOUT: {
          const id = e.id;
          const w = id === undefined ? undefined : openWait(st.waits, 'cert', id, e.time);
          w?.endWith(e);
          break;
        }
        case EVENT.TASK_WAIT: {
          if (k.on === undefined || openWait(st.waits, 'task', '', e.time)) break;
          st.waits.push(new WaitIv(e));
          break;
        }
        case EVENT.TASK_RESUME:
        case EVENT.TASK_TIMEOUT: {
          const w = openWait(st.waits, 'task', '', e.time);
          w?.endWith(e);
          break;
        }
      }
    }
  }


  /** The index a wait is found in (by its resource; a join by each id it names), if any. */
  private waitIndex(w: WaitIv): MultiIndex<WaitIv> | undefined {
    switch (w.kind) {
      case 'lock':
        return this.lockWaits;
      case 'pool':
        return this.poolWaits;
      case 'rpc':
        return w.res ? this.poolWaits : undefined;
      case 'cert':
        return this.certWaits;
      case 'task':
        return this.taskWaits;
    }
  }

  private unindex(task: TaskNode): void {
    task.openWaitCount = 0;
    for (let w = task.waits; w !== undefined; w = w.next) {
      if (w.end === OPEN) this.openWaits--;
      this.unindexWait(w);
    }
    for (let h = task.holds; h !== undefined; h = h.next) {
      if (h.end === OPEN) this.openHolds--;
      this.holdIndex(h).delete(h.res, h);
      if (h.handover) this.dropHandover(h);
    }
    for (const i of task.issues) this.certIssues.delete(i.cert, i);
    for (const o of task.orders) this.orderIndex.delete(orderKey(o), o);
    for (const r of task.readies ?? EMPTY) this.certReady.delete(r.cert, r);
    task.readies = undefined;
  }

  /** Takes a wait out of its index (see `indexWait`). */
  private unindexWait(w: WaitIv): void {
    const index = this.waitIndex(w);
    if (index === this.taskWaits) for (const id of w.on ?? EMPTY) index.delete(id, w);
    else index?.delete(w.res, w);
  }

  private indexWait(w: WaitIv, touched: Touched): void {
    const index = this.waitIndex(w);
    if (index === this.taskWaits) for (const id of w.on ?? EMPTY) index.add(id, w);
    else index?.add(w.res, w);
    if (w.timedOut) touched.timeouts.push(w);
  }

  private indexOrder(o: OrderEdge, touched: Touched): void {
    this.orderIndex.add(orderKey(o), o);
    touched.orderPairs.add(o.first < o.then ? o.first + '\0' + o.then : o.then + '\0' + o.first);
  }

  private index(task: TaskNode, touched: Touched): void {
    for (let w = task.waits; w !== undefined; w = w.next) this.indexWait(w, touched);
    for (let h = task.holds; h !== undefined; h = h.next) if (h.handover) this.placeHandover(h, touched);
    for (const i of task.issues) this.certIssues.add(i.cert, i);
    for (const o of task.orders) this.indexOrder(o, touched);
    for (const r of task.readies ?? EMPTY) this.certReady.add(r.cert, r);
    // Counted, and the open holds indexed, once placed: a hand-over may end a hold.
    let open = 0;
    for (let w = task.waits; w !== undefined; w = w.next) if (w.end === OPEN) open++;
    task.openWaitCount = open;
    this.openWaits += open;
    for (let h = task.holds; h !== undefined; h = h.next) {
      if (h.end === OPEN) this.openHolds++;
      this.holdIndex(h).add(h.res, h);
    }
  }

  /** The open holds' index of a hold's kind (see `liveLockHolds`). */
  private liveHolds(h: HoldIv): MultiIndex<HoldIv> {
    return h.kind === 'lock' ? this.liveLockHolds : this.livePoolHolds;
  }

  /** The index a hold is in now: by its kind, and whether it is open. */
  private holdIndex(h: HoldIv): MultiIndex<HoldIv> {
    if (h.end === OPEN) return this.liveHolds(h);
    return h.kind === 'lock' ? this.endedLockHolds : this.endedPoolHolds;
  }

  /** The holds of a lock (`kind` lock) or of a pool's units that the view at `t` may see. */
  holdsAt(kind: 'lock' | 'pool', res: string, t: number): Iterable<HoldIv> {
    const live = (kind === 'lock' ? this.liveLockHolds : this.livePoolHolds).get(res);
    if (t === NOW) return live;
    return [...live, ...(kind === 'lock' ? this.endedLockHolds : this.endedPoolHolds).get(res)];
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

  /**
   * A task's releases of locks it did not take changed: the holds it inherited are handed over again (by
   * deriving the tasks that took them), so that a release that came after the hand-over ends its hold.
   */
  private releasesChanged(task: TaskNode, touched: Touched): void {
    for (const h of task.inherited) this.markDirty(h.origin, touched);
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
    for (const t of origins) this.markDirty(t, touched);
  }

  /**
   * Marks a task for derivation. Derivation is deferred to `flush()`, which detection calls first: a task
   * that many spans of a batch touch (a worker thread with a long history) is derived once per batch, not
   * once per span, and a whole file once.
   */
  private markDirty(task: TaskNode, touched: Touched): void {
    this.dirty.add(task);
    this.rebuild.add(task);
    this.appended.delete(task);
    touched.tasks.add(task);
  }

  /** Marks a task for deriving a new event of a new span (or a log record), by `append` where it can. */
  private markAppend(e: WaitEvent, touched: Touched): void {
    const task = e.task;
    // A span-task, or a task never derived, is derived whole: its events need no list (see `appendable`).
    if (task.spanTask || task.frontierBy === undefined) {
      this.markDirty(task, touched);
      return;
    }
    this.dirty.add(task);
    touched.tasks.add(task);
    if (this.rebuild.has(task)) return;
    const list = this.appended.get(task);
    if (list === undefined) this.appended.set(task, [e]);
    else list.push(e);
  }

  /** Derives every task marked since the last flush. Deriving may mark others (hand-overs): those too. */
  flush(touched: Touched): void {
    while (this.dirty.size > 0) {
      const batch = [...this.dirty];
      this.dirty.clear();
      for (const t of batch) {
        const evs = this.rebuild.delete(t) ? undefined : this.appended.get(t);
        this.appended.delete(t);
        if (evs === undefined) this.derive(t, touched);
        else if (appendable(t, evs)) this.append(t, evs, touched);
        else if (!this.rewind(t, evs, touched)) this.derive(t, touched);
      }
    }
  }
}

/** The key of a lock-order edge in the order indexes: `first \0 then`. */
function orderKey(o: OrderEdge): string {
  return o.first + '\0' + o.then;
}

/** Whether two lists of releases are the same releases. */
function sameReleases(a: readonly OrphanRelease[], b: readonly OrphanRelease[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i].lock !== b[i].lock || a[i].time !== b[i].time) return false;
  return true;
}

/**
 * Adds to `out` the tasks a span's events belong to, and its own task: after the events' with
 * `ownLast` (the order replacing a version has always used), else first. Each task once.
 */
function tasksOf(span: SpanNode, out: TaskNode[], ownLast = false): TaskNode[] {
  if (!ownLast && !out.includes(span.task)) out.push(span.task);
  for (let e = span.events; e !== undefined; e = e.next) if (!out.includes(e.task)) out.push(e.task);
  if (ownLast && !out.includes(span.task)) out.push(span.task);
  return out;
}

/**
 * Whether new events can be derived onto a task's intervals (`GraphStore.append`): each comes after
 * everything derived so far, from a span that is trusted. Sorts `evs`. (`markAppend` lists events only of
 * tasks derived before that are not span-tasks, whose holds pass on when their span ends.)
 */
function appendable(task: TaskNode, evs: WaitEvent[]): boolean {
  for (const e of evs) if (!(e.time > task.frontier) || e.span.stale) return false;
  sortEvents(evs);
  return true;
}

/** Links intervals through their `next` field, in order; returns the first. */
function linked<T extends { next: T | undefined }>(items: T[]): T | undefined {
  for (let i = 0; i < items.length; i++) items[i].next = items[i + 1];
  return items[0];
}

/**
 * The open wait of this kind and resource that an event at `at` ends, if any. A wait whose span ended
 * before `at` ended with its span (see `endWithSpan`): a later event does not end it again.
 */
function openWait(waits: WaitIv[], kind: string, res: string, at: number): WaitIv | undefined {
  for (let i = waits.length - 1; i >= 0; i--) {
    const w = waits[i];
    if (w.end === OPEN && w.kind === kind && w.res === res && !(w.span.end < at)) return w;
  }
  return undefined;
}

function openRpcWait(waits: WaitIv[], span: SpanNode, at: number): WaitIv | undefined {
  for (const w of waits) if (w.end === OPEN && w.kind === 'rpc' && w.span === span && !(span.end < at)) return w;
  return undefined;
}

/** What set a task's frontier (see `TaskNode.frontierBy`). */
type FrontierBy = WaitEvent | SpanNode | undefined;

function timeOf(by: FrontierBy): number {
  return by === undefined ? -1 : by instanceof SpanNode ? by.end : by.time;
}

/**
 * Ends a wait still open when its span has ended, with the span: a span's waits end with it. Returns the
 * derivation's frontier, moved to that span where its end is later.
 */
function endWithSpan(w: WaitIv, frontier: FrontierBy): FrontierBy {
  const spanEnd = w.span.end;
  if (w.end !== OPEN || spanEnd === OPEN || spanEnd < w.start) return frontier;
  w.endWith(w.span);
  return spanEnd > timeOf(frontier) ? w.span : frontier;
}


function openHold(holds: HoldIv[], kind: string, res: string): HoldIv | undefined {
  for (const h of holds) if (h.end === OPEN && h.kind === kind && h.res === res) return h;
  return undefined;
}

/**
 * Records the lock-order edges of taking `lock` while holding others (lockdep's dependency edges) into
 * `orders` (made on the first edge); returns it.
 */
function recordOrder(
  task: TaskNode,
  holds: HoldIv[],
  orders: OrderEdge[] | undefined,
  e: WaitEvent,
  lock: string,
  mode: 'exclusive' | 'shared',
): OrderEdge[] | undefined {
  let held: HoldIv[] | undefined;
  for (const h of holds) if (h.kind === 'lock' && h.end === OPEN) (held ??= []).push(h);
  if (held === undefined) return orders;
  const gates = held.map((h) => h.res);
  for (const h of held) {
    if (h.res === lock) continue;
    if (orders?.some((o) => o.first === h.res && o.then === lock)) continue;
    (orders ??= []).push({
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
  return orders;
}

function firstEventTaskId(events: SpanEventRecord[]): string | undefined {
  for (const e of events) {
    if (!WAIT_EVENTS.has(e.name)) continue;
    const id = str(e.attributes[ATTR.TASK_ID]) ?? str(e.attributes[ATTR.THREAD_ID]);
    if (id !== undefined) return id;
  }
  return undefined;
}

/** A task's marks (see `Tails`). */
type Marks = Pick<Tails, 'waitMark' | 'waitMarkAt' | 'holdMark' | 'holdMarkAt'>;

/**
 * A task's tails after a derivation whose `holds` are every hold of the task that can be open, with the
 * marks of `marks` (none without).
 */
function tailsOf(wait: WaitIv | undefined, hold: HoldIv | undefined, holds: readonly HoldIv[], marks: Marks | undefined): Tails {
  let open = 0;
  for (const h of holds) if (h.end === OPEN) open++;
  return {
    wait,
    hold,
    openHolds: open,
    waitMark: marks?.waitMark,
    waitMarkAt: marks?.waitMarkAt ?? Number.NEGATIVE_INFINITY,
    holdMark: marks?.holdMark,
    holdMarkAt: marks?.holdMarkAt ?? Number.NEGATIVE_INFINITY,
  };
}

/** Adds the events of `task` from `from` on to `out`, from its spans that have events and are not stale. */
function eventsOf(task: TaskNode, from: number, out: WaitEvent[]): void {
  const spans = task.eventSpans();
  if (spans instanceof SpanNode) spanEventsOf(task, spans, from, out);
  else if (spans !== undefined) for (const s of spans) spanEventsOf(task, s, from, out);
}

function spanEventsOf(task: TaskNode, span: SpanNode, from: number, out: WaitEvent[]): void {
  if (span.stale || !span.mayHaveEventsFrom(from)) return;
  for (let e = span.events; e !== undefined; e = e.next) if (e.task === task && e.time >= from) out.push(e);
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

/**
 * Events by time; simultaneous ones of different spans by span start and id. Sorting is stable, so
 * simultaneous events of one span keep the order they were gathered in.
 */
function eventOrder(a: WaitEvent, b: WaitEvent): number {
  if (a.time !== b.time) return a.time - b.time;
  const sa = a.span;
  const sb = b.span;
  if (sa === sb) return 0;
  return (
    sa.start - sb.start ||
    (sa.spanId < sb.spanId ? -1 : sa.spanId > sb.spanId ? 1 : 0) ||
    (sa.traceId < sb.traceId ? -1 : sa.traceId > sb.traceId ? 1 : 0)
  );
}

/**
 * Sorts a task's events by `eventOrder`, stably: simultaneous events of one span keep their order (record
 * order, then log records). Most tasks have a handful, which an insertion sort does without the set-up
 * of Array.prototype.sort.
 */
function sortEvents(evs: WaitEvent[]): void {
  if (evs.length > 16) {
    evs.sort(eventOrder);
    return;
  }
  for (let i = 1; i < evs.length; i++) {
    const e = evs[i];
    let j = i - 1;
    for (; j >= 0 && eventOrder(evs[j], e) > 0; j--) evs[j + 1] = evs[j];
    evs[j + 1] = e;
  }
}
