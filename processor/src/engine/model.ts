/**
 * The engine's in-memory model: spans (the newest version of each), tasks, and the intervals of waiting,
 * holding and issuing derived from their events.
 *
 * Times are unix nanoseconds in doubles. An interval is `[start, end]`; an open one has `end = OPEN`
 * (Infinity). A view of the graph at time `t` sees the intervals with `start < t <= end`; the present is
 * the view at `NOW` (Infinity), which sees exactly the open intervals.
 *
 * Memory: the graph holds a span, a task, its events and a few intervals for every open task, so their
 * layout sets the detector's footprint (a million open tasks must fit in well under 1 GiB). Hence classes
 * with few fields, and some habits that read oddly without the reason:
 * - an interval keeps a reference to the event that opened it and reads its task, resource, span and
 *   start through it, rather than copying them; a wait keeps what ended it (an event, or its span);
 * - an open end is stored as `undefined` and read back as `OPEN` by a getter: V8 boxes every double held
 *   in an object field in a heap number of its own, so a stored Infinity would cost one per open interval;
 * - for the same reason a span's start and observation time, and an event's time, are kept as two small
 *   integers each (`TIME_SPLIT`), an ended span's end as its length, and its latest event time relative to
 *   its start where that is small (`encodeLastEvent`);
 * - a task's waits and holds, and a span's events, are singly linked lists (a `next` field), and a task's
 *   spans are one reference until there are several: most tasks have one span, one hold and one wait,
 *   and a JS array costs more than the object it would hold;
 * - what few tasks or holds have (inherited holds, certificate issues, lock-order edges; upgrades and
 *   hand-overs) sits in a side object made on first use.
 */
import { EVENT } from '../../../schemas/index.js';
import type { WaitEvent } from './events.js';

/** The end of an interval that has not ended. */
export const OPEN = Number.POSITIVE_INFINITY;
/** The view of the present. */
export const NOW = Number.POSITIVE_INFINITY;

/** Whether an interval is active in the view at `t`. */
export function activeAt(start: number, end: number, t: number): boolean {
  return start < t && end >= t;
}

/** A service instance: `service.name`, plus `service.instance.id` where set. Shared by its tasks. */
export class Instance {
  constructor(
    /** The instance's name: the service name, or `service/instance id`. */
    readonly name: string,
    readonly service: string,
    readonly instanceId: string | undefined,
    /** The tasks of the instance by task id (shared by instances of the same name). */
    readonly tasks: Map<string, TaskNode>,
  ) {}
}

/**
 * A time (unix ns) kept in two fields, its multiple of 2^30 and the rest, each a small integer that the
 * field holds itself: one field would hold a heap number of its own, for each of the million spans and
 * events a graph may keep (more to allocate, copy and mark for the garbage collector). Exact for every
 * double: the multiple is a power-of-two scaling, and the rest is exactly what remains.
 */
export const TIME_SPLIT = 1073741824;

/** The high part of a time (see TIME_SPLIT); a time that is not finite is kept whole there. */
export function timeHi(t: number): number {
  return Number.isFinite(t) ? Math.floor(t / TIME_SPLIT) : t;
}

/** The low part of a time whose high part is `hi`. */
export function timeLo(t: number, hi: number): number {
  return Number.isFinite(t) ? t - hi * TIME_SPLIT : 0;
}

/**
 * A span's latest event time (positive: the span has events) as `SpanNode.lastEvent` holds it: relative to
 * the span's start where that is a whole number below 2^30 (an event within a second of the start, most of
 * them), a small integer in the field itself rather than a heap number of its own; else the time itself
 * when it is at least 2^30 (any unix time of today); else, negated. The three ranges do not meet, so each
 * value reads back one way (`lastEventTime`), exactly.
 */
function encodeLastEvent(t: number, start: number): number {
  const d = t - start;
  if (d >= 0 && d < TIME_SPLIT && Number.isInteger(d) && start + d === t) return d;
  return t >= TIME_SPLIT ? t : -t;
}

const DETACHED = 1;
const PLACEHOLDER = 2;
const STALE = 4;
const RETIRING = 8;
/** `SpanNode.length` is the end itself: the length would not give the end back exactly. */
const END_AS_IS = 16;
/** Events from log records were added to it: its `lastEventTime` does not bound its events. */
const LOGGED = 32;
/** An open version of a child of this span has been seen (see `SpanNode.openChildSeen`). */
const OPEN_CHILD = 64;
const FLAGS = 127;
/**
 * `SpanNode.bits`: the flags, then the retry attempt plus one (7 bits), then the event count (16 bits): 30
 * bits in all, so that it stays a small integer (V8's are 31 bits), not a heap number.
 */
const ATTEMPT_SHIFT = 7;
const COUNT_SHIFT = 14;
const MAX_ATTEMPT = 126;
const MAX_COUNT = 2 ** 16 - 1;

/** The newest version of one span. */
export class SpanNode {
  /**
   * The first of the span's wait events (a list through `WaitEvent.next`): its own in record order, then
   * those that arrived as log records, in arrival order.
   */
  events: WaitEvent | undefined = undefined;
  /**
   * Where the span ended: its length, which for most spans is a small integer kept in the field itself,
   * where an end time would be a heap number of its own. Undefined while open.
   */
  private length: number | undefined;
  /**
   * The latest event time, most often relative to the start (`encodeLastEvent`); undefined for the most
   * spans, which have no events.
   */
  private lastEvent: number | undefined;
  /** The flags, the attempt and the event count in one small integer (see ATTEMPT_SHIFT): fewer fields. */
  private bits: number;
  // The start and the observation time, each in two parts (see TIME_SPLIT).
  private startHi: number | undefined = undefined;
  private startLo: number | undefined = undefined;
  private seenHi: number | undefined = undefined;
  private seenLo: number | undefined = undefined;

  constructor(
    readonly traceId: string,
    readonly spanId: string,
    /** The parent's span id (in the same trace), if any. */
    readonly parentSpanId: string | undefined,
    readonly name: string,
    /** Only a placeholder's start moves (to its earliest log event); a placeholder is open. */
    start: number,
    end: number,
    /** The task whose span this is (for parent/child waits and hold hand-over). */
    readonly task: TaskNode,
    /** How many span events the version had (for choosing the newest version). */
    eventCount: number,
    /** The latest event time of the version (for choosing the newest version), 0 without events. */
    lastEventTime: number,
    /** When the processor last saw a version of this span (caller's clock), for staleness. */
    observedAt: number,
    /** `http.request.resend_count`, or -1 where the span is not a retry attempt. */
    attempt: number,
    detached: boolean,
    /** Whether only log events have been seen for this span so far. */
    placeholder: boolean,
  ) {
    this.start = start;
    this.observedAt = observedAt;
    let endAsIs = false;
    if (end === OPEN) this.length = undefined;
    else {
      const length = end - start;
      endAsIs = start + length !== end; // an end far from its start (bad input), where doubles round
      this.length = endAsIs ? end : length;
    }
    this.lastEvent = lastEventTime === 0 ? undefined : encodeLastEvent(lastEventTime, start);
    this.bits =
      (endAsIs ? END_AS_IS : 0) |
      (detached ? DETACHED : 0) |
      (placeholder ? PLACEHOLDER : 0) |
      ((Math.min(attempt, MAX_ATTEMPT) + 1) << ATTEMPT_SHIFT) |
      (Math.min(eventCount, MAX_COUNT) << COUNT_SHIFT);
  }

  /** When it began (unix ns). Only a placeholder's start moves (to its earliest log event). */
  get start(): number {
    return this.startHi! * TIME_SPLIT + this.startLo!;
  }

  set start(t: number) {
    // The latest event time is kept relative to the start: keep it where it was.
    const last = this.lastEvent === undefined || this.startHi === undefined ? 0 : this.lastEventTime;
    const hi = timeHi(t);
    this.startHi = hi;
    this.startLo = timeLo(t, hi);
    if (last !== 0) this.lastEvent = encodeLastEvent(last, t);
  }

  /** When the processor last saw a version of this span (caller's clock, unix ns), for staleness. */
  get observedAt(): number {
    return this.seenHi! * TIME_SPLIT + this.seenLo!;
  }

  set observedAt(t: number) {
    const hi = timeHi(t);
    this.seenHi = hi;
    this.seenLo = timeLo(t, hi);
  }

  /** How many span events the version had (up to 65,535), for choosing the newest version. */
  get eventCount(): number {
    return this.bits >>> COUNT_SHIFT;
  }

  /** The latest event time of the version, 0 without events. */
  get lastEventTime(): number {
    const v = this.lastEvent;
    if (v === undefined) return 0;
    if (v < 0) return -v;
    return v < TIME_SPLIT ? this.start + v : v;
  }

  /** `http.request.resend_count` (up to 126), or -1 where the span is not a retry attempt. */
  get attempt(): number {
    return ((this.bits >>> ATTEMPT_SHIFT) & 0x7f) - 1;
  }

  private get flags(): number {
    return this.bits & FLAGS;
  }

  private set flags(v: number) {
    this.bits = (this.bits & ~FLAGS) | v;
  }

  /** OPEN while the span has not ended. */
  get end(): number {
    const l = this.length;
    return l === undefined ? OPEN : (this.bits & END_AS_IS) === 0 ? this.start + l : l;
  }

  /** The service instance (always the task's: a span's task lives in the span's instance). */
  get instance(): string {
    return this.task.inst.name;
  }

  /** Whether the span's parent does not wait for it (`task.detached`). */
  get detached(): boolean {
    return (this.flags & DETACHED) !== 0;
  }

  /** Whether only log events have been seen for this span so far. */
  get placeholder(): boolean {
    return (this.flags & PLACEHOLDER) !== 0;
  }

  /** Set when no fresh snapshot came in time: its waits and holds are not trusted. */
  get stale(): boolean {
    return (this.flags & STALE) !== 0;
  }

  set stale(v: boolean) {
    this.flags = v ? this.flags | STALE : this.flags & ~STALE;
  }

  /** Whether events from log records were added to it (then `lastEventTime` does not bound its events). */
  get logged(): boolean {
    return (this.flags & LOGGED) !== 0;
  }

  set logged(v: boolean) {
    this.flags = v ? this.flags | LOGGED : this.flags & ~LOGGED;
  }

  /** Whether it may have an event at `t` or later: false only where its record's events all came before. */
  mayHaveEventsFrom(t: number): boolean {
    return (this.flags & LOGGED) !== 0 || this.lastEventTime >= t;
  }

  /** Set once the span is in the retirement log (see `GraphStore.forget`), so it goes in once. */
  get retiring(): boolean {
    return (this.flags & RETIRING) !== 0;
  }

  set retiring(v: boolean) {
    this.flags = v ? this.flags | RETIRING : this.flags & ~RETIRING;
  }

  /**
   * Whether an open version of one of its children has been seen while this span (or an earlier version of
   * it) was kept. Never cleared: false means that none of its children is open now, so the present finds
   * no parent/child wait under it without looking at its trace (`GraphStore.noteOpenChildren`).
   */
  get openChildSeen(): boolean {
    return (this.flags & OPEN_CHILD) !== 0;
  }

  /** Notes that an open version of one of its children is kept (or that one may be). */
  noteOpenChild(): void {
    this.flags |= OPEN_CHILD;
  }
}

/** The kinds of wait interval. */
export type WaitIvKind = 'lock' | 'pool' | 'rpc' | 'cert' | 'task';

/** An interval opened by an event: it starts at the event, in the event's span. */
abstract class Interval {
  constructor(
    /** The event that opened the interval. */
    readonly ev: WaitEvent,
  ) {}

  get span(): SpanNode {
    return this.ev.span;
  }

  get start(): number {
    return this.ev.time;
  }

  /** When it ended; OPEN while it has not. */
  abstract get end(): number;
}

/**
 * An interval that keeps its end time itself, in one field: as its length from the start where that is a
 * whole number below 2^30 (a hold of up to a second, most of them), a small integer in the field itself
 * rather than a heap number of its own, one object fewer a hold for the collector to mark; else the end as
 * it is where that is at least 2^30 (any time of this century; never a length, so the two do not meet);
 * else (bad input: an end before its start, near the epoch, not whole) the end in a box of its own.
 */
abstract class EndTimeInterval extends Interval {
  private endOrLength: number | { readonly end: number } | undefined = undefined;

  get end(): number {
    const e = this.endOrLength;
    if (e === undefined) return OPEN;
    if (typeof e !== 'number') return e.end;
    return e < TIME_SPLIT ? this.ev.time + e : e;
  }

  set end(v: number) {
    if (v === OPEN) {
      this.endOrLength = undefined;
      return;
    }
    const start = this.ev.time;
    const l = v - start;
    // Exact only where adding the length back gives the end (an end far from its start would round; -0 would come back +0).
    // `| 0`: a small integer even where unoptimized code computed it as a heap number (exact: 0 <= l < 2^30).
    if (l >= 0 && l < TIME_SPLIT && Number.isInteger(l) && Object.is(start + l, v)) this.endOrLength = l | 0;
    else this.endOrLength = v >= TIME_SPLIT ? v : { end: v };
  }
}

/**
 * One wait of a task: from the event that opened it to what ended it, an event of the task or the end
 * of its span. It keeps that, not the end time: the time and the reason come with it.
 */
export class WaitIv extends Interval {
  /** The task's next wait, in the order they began. */
  next: WaitIv | undefined = undefined;
  private endedWith: WaitEvent | SpanNode | undefined = undefined;

  get end(): number {
    const by = this.endedWith;
    return by === undefined ? OPEN : by instanceof SpanNode ? by.end : by.time;
  }

  /** The event (or `span.end`) that ended the wait. */
  get endedBy(): string | undefined {
    const by = this.endedWith;
    return by === undefined ? undefined : by instanceof SpanNode ? 'span.end' : by.name;
  }

  /** Whether a timeout (`*.timeout`) ended it. */
  get timedOut(): boolean {
    return this.endedBy?.endsWith('.timeout') === true;
  }

  /** The span whose event (or end) ended the wait; undefined while it is open. */
  get endedIn(): SpanNode | undefined {
    const by = this.endedWith;
    return by === undefined ? undefined : by instanceof SpanNode ? by : by.span;
  }

  /** Ends the wait with an event of its task, or with the end of its span. */
  endWith(by: WaitEvent | SpanNode): void {
    this.endedWith = by;
  }

  /** Opens it again, for a derivation that goes back to before its end (see `GraphStore.rewind`). */
  reopen(): void {
    this.endedWith = undefined;
  }

  /** Whether it has not ended (as `end === OPEN`, without looking at what ended it). */
  get open(): boolean {
    return this.endedWith === undefined;
  }

  get task(): TaskNode {
    return this.ev.task;
  }

  get kind(): WaitIvKind {
    return this.ev.kind.waitKind!;
  }

  /** lock.id, pool.name or cert.id; for rpc the callee's intake pool, or ''; for task ''. */
  get res(): string {
    return this.ev.id ?? '';
  }

  /** lock mode for lock waits, join mode for task waits. */
  get mode(): 'exclusive' | 'shared' | 'all' | 'any' {
    return this.ev.kind.waitMode;
  }

  get lockKind(): string | undefined {
    return this.ev.kind.waitKind === 'lock' ? this.ev.kind.lockKind : undefined;
  }

  /** Pool capacity where known, else 0. */
  get size(): number {
    return this.ev.kind.waitKind === 'pool' ? this.ev.kind.size : 0;
  }

  /** task.wait.on, for task waits. */
  get on(): string[] | undefined {
    return this.ev.kind.waitKind === 'task' ? this.ev.kind.on : undefined;
  }
}

/** What few holds have: an upgraded mode, the wait the acquire ended, a hand-over. */
class HoldExtras {
  mode: 'exclusive' | 'shared' | undefined = undefined;
  /** When a re-entrant acquire made it exclusive (a lock's mode only ever goes from shared to exclusive). */
  upgradedAt = 0;
  via: WaitIv | undefined = undefined;
  handover: Handover | undefined = undefined;
}

/** One hold of a lock or of one pool unit. */
export class HoldIv extends EndTimeInterval {
  /** The task's next hold, in the order they were taken. */
  next: HoldIv | undefined = undefined;
  private extras: HoldExtras | undefined = undefined;

  constructor(
    /** The acquire or checkout that took it. */
    ev: WaitEvent,
    /** The wait the acquire ended, where it tells what the acquire does not (lock.kind, pool.size). */
    via: WaitIv | undefined,
  ) {
    super(ev);
    if (via !== undefined) this.x().via = via;
  }

  /** The task that took it. */
  get origin(): TaskNode {
    return this.ev.task;
  }

  get kind(): 'lock' | 'pool' {
    return this.ev.kind.name === EVENT.LOCK_ACQUIRE ? 'lock' : 'pool';
  }

  get res(): string {
    return this.ev.id!;
  }

  /** The acquire's mode (a pool unit's is exclusive), or the stronger one a re-entrant acquire asked. */
  get mode(): 'exclusive' | 'shared' {
    return this.extras?.mode ?? (this.kind === 'lock' ? this.ev.kind.mode : 'exclusive');
  }

  /** A re-entrant acquire at `at` asks for `mode`: an exclusive one makes a shared hold exclusive. */
  upgrade(mode: 'exclusive' | 'shared', at: number): void {
    if (mode !== 'exclusive' || this.mode === 'exclusive') return;
    const x = this.x();
    x.mode = mode;
    x.upgradedAt = at;
  }

  /**
   * Takes back an upgrade made at `t0` or later (see `GraphStore.rewind`): the acquire that made it is
   * derived again, and may or may not make it again.
   */
  downgradeFrom(t0: number): void {
    const x = this.extras;
    if (x?.mode !== undefined && x.upgradedAt >= t0) x.mode = undefined;
  }

  get lockKind(): string | undefined {
    return this.kind === 'lock' ? (this.ev.kind.lockKind ?? this.extras?.via?.lockKind) : undefined;
  }

  /** Pool capacity where known, else 0. */
  get size(): number {
    return this.kind === 'pool' ? this.ev.kind.size || (this.extras?.via?.size ?? 0) : 0;
  }

  /** Set when the span-task that took it ended with the hold still open. */
  get handover(): Handover | undefined {
    return this.extras?.handover;
  }

  set handover(v: Handover | undefined) {
    if (v !== undefined || this.extras !== undefined) this.x().handover = v;
  }

  private x(): HoldExtras {
    return (this.extras ??= new HoldExtras());
  }
}

/** Where a hold went when the span-task that took it ended. */
export interface Handover {
  /** When the span ended. */
  at: number;
  /**
   * Who holds it from then on: the task of the nearest open ancestor span in the same service instance;
   * undefined while that ancestor is unknown (or there is none).
   */
  heir: TaskNode | undefined;
  /** The span id the hand-over rests at (in the same trace), to redo it when that span changes. */
  rest: string | undefined;
}

/** One cert.issue .. cert.ready interval. */
export class IssueIv extends EndTimeInterval {
  get task(): TaskNode {
    return this.ev.task;
  }

  get cert(): string {
    return this.ev.id!;
  }
}

/** A lock taken while others were held: one edge of the lock-order history. */
export interface OrderEdge {
  task: TaskNode;
  first: string;
  firstMode: 'exclusive' | 'shared';
  then: string;
  thenMode: 'exclusive' | 'shared';
  /** Other locks held at the time: a common one (a gate) makes an inversion harmless. */
  gates: string[];
  span: SpanNode;
  time: number;
}

/** A cert.ready event of a task: it ends every wait for the cert, in any task. */
export interface Ready {
  cert: string;
  time: number;
}

/** A lock.release that matched no hold of its task: it may end a hold the task inherited. */
export interface OrphanRelease {
  lock: string;
  time: number;
}

const NONE: readonly never[] = Object.freeze([]);

/** What few tasks have, kept aside so that the others do not pay a field for each. */
class TaskExtras {
  inherited: readonly HoldIv[] = NONE;
  issues: readonly IssueIv[] = NONE;
  orders: readonly OrderEdge[] = NONE;
  readies: readonly Ready[] | undefined = undefined;
  orphanReleases: readonly OrphanRelease[] = NONE;
  /** Of the spans of a task that has several, the open ones, in the order attached (see `openSpansOf`). */
  open: SpanNode[] | undefined = undefined;
  /**
   * Of the spans of a task that has several, those with events, in the order attached (see
   * `eventSpans`): a thread's derivation finds its events without going through every span it has.
   */
  eventful: SpanNode[] | undefined = undefined;
  /** Its last wait and hold, and how many of its holds are open: see `TaskNode.tails`. */
  tails: Tails | undefined = undefined;
  /**
   * Of a task with several spans, how many slots at the front of its list are empty: the oldest spans go
   * first (see `detachAll`), and taking them off the front one pass at a time would move the rest each time.
   */
  head = 0;
}

/**
 * A task's last wait and last hold, and how many of its holds are open: what `GraphStore.append` needs to
 * derive new events onto a thread without walking its history of waits and holds. And marks: the waits up
 * to `waitMark` (and the holds up to `holdMark`), from the first, all ended by `waitMarkAt` (`holdMarkAt`),
 * so that a derivation from a later time (`GraphStore.rewind`) starts after them.
 */
export interface Tails {
  wait: WaitIv | undefined;
  hold: HoldIv | undefined;
  openHolds: number;
  waitMark: WaitIv | undefined;
  waitMarkAt: number;
  holdMark: HoldIv | undefined;
  holdMarkAt: number;
}

/** One task: a thread, a goroutine, an async flow, or a span. */
export class TaskNode {
  /** The first of its waits, in the order they began (a list through `WaitIv.next`). */
  waits: WaitIv | undefined = undefined;
  /** The first of its holds, in the order they were taken (a list through `HoldIv.next`). */
  holds: HoldIv | undefined = undefined;
  /** Spans whose task this is, or that carry events of this task: one span, or an array of several. */
  private spanList: SpanNode | SpanNode[] | undefined = undefined;
  private extras: TaskExtras | undefined = undefined;
  /** How many of its spans are open: with none, it waits for no child span in the present. */
  openSpans = 0;
  /** How many of its waits are open (kept by `GraphStore` as it derives): with none, the present looks at no wait of it. */
  openWaitCount = 0;
  /**
   * What set its frontier (see `frontier`): the last event derived, or a span whose end ended a wait. A
   * reference rather than the time: a time in a field is a heap number of its own, for each task.
   */
  frontierBy: WaitEvent | SpanNode | undefined = undefined;

  /**
   * The latest time its derivation took in (its last event, or a span end that ended a wait); -1 before
   * the first. New events after it can be derived onto what there is (see `GraphStore.append`).
   */
  get frontier(): number {
    const by = this.frontierBy;
    return by === undefined ? -1 : by instanceof SpanNode ? by.end : by.time;
  }

  constructor(
    readonly inst: Instance,
    readonly taskId: string,
    /** Whether the task is its span (no task.id or thread.id). */
    readonly spanTask: boolean,
  ) {}

  /** The service instance: service.name, plus service.instance.id where set. */
  get instance(): string {
    return this.inst.name;
  }

  get service(): string {
    return this.inst.service;
  }

  get instanceId(): string | undefined {
    return this.inst.instanceId;
  }

  /** How many spans the task has (see `spanAt`). */
  get spanCount(): number {
    const l = this.spanList;
    return l === undefined ? 0 : l instanceof SpanNode ? 1 : l.length - this.extras!.head;
  }

  /** The `i`-th span of the task, in the order they were attached. */
  spanAt(i: number): SpanNode {
    const l = this.spanList!;
    return l instanceof SpanNode ? l : l[this.extras!.head + i];
  }

  /**
   * Its open spans: those the present looks at. A task with several spans (a thread) keeps a list of
   * them, so that the present does not walk its whole history of spans; with one span, that span if open.
   */
  openSpansOf(): readonly SpanNode[] | SpanNode | undefined {
    const l = this.spanList;
    if (l === undefined || l instanceof SpanNode) return l !== undefined && l.end === OPEN ? l : undefined;
    return this.extras?.open ?? NONE;
  }

  /**
   * The spans that may carry events of this task: of its spans, those with events. Each is a span of the
   * task, or one that carries events of it.
   */
  eventSpans(): readonly SpanNode[] | SpanNode | undefined {
    const l = this.spanList;
    if (l === undefined || l instanceof SpanNode) return l !== undefined && l.events !== undefined ? l : undefined;
    return this.extras?.eventful ?? NONE;
  }

  /** Attaches a span (once); one attached before that now has events (a log record's) is listed with them. */
  attach(span: SpanNode): void {
    const l = this.spanList;
    if (Array.isArray(l) && l.includes(span, this.extras!.head)) {
      const eventful = this.extras?.eventful;
      if (span.events !== undefined && !eventful?.includes(span)) (this.x().eventful ??= []).push(span);
      return;
    }
    this.attachNew(span);
  }

  /** From one span to several: the open and eventful lists start with the first one, if it is either. */
  private toList(first: SpanNode, span: SpanNode): void {
    this.spanList = [first, span];
    this.x().head = 0;
    if (first.end === OPEN) (this.x().open ??= []).push(first);
    if (first.events !== undefined) (this.x().eventful ??= []).push(first);
  }

  /** Counts an attached span that is open, and lists it, and one with events, where the task has several. */
  private opened(span: SpanNode): void {
    const several = Array.isArray(this.spanList);
    if (several && span.events !== undefined) (this.x().eventful ??= []).push(span);
    if (span.end !== OPEN) return;
    this.openSpans++;
    if (several) (this.x().open ??= []).push(span);
  }

  /** Uncounts a detached span that is open, and takes it off the lists. */
  private closed(span: SpanNode): void {
    const eventful = this.extras?.eventful;
    if (eventful !== undefined && span.events !== undefined) {
      const i = eventful.indexOf(span);
      if (i >= 0) eventful.splice(i, 1);
    }
    if (span.end !== OPEN) return;
    this.openSpans--;
    const open = this.extras?.open;
    if (open === undefined) return;
    const i = open.indexOf(span);
    if (i >= 0) open.splice(i, 1);
  }

  /** Back to one span or none: no lists. */
  private fromList(): void {
    if (this.extras !== undefined && !Array.isArray(this.spanList)) this.extras.open = this.extras.eventful = this.extras.tails = undefined;
  }

  /**
   * Attaches a span version that is new to the store: no task has it yet, except this one when the span
   * carries several of its events (attached one after another, so only the last can be it).
   */
  attachNew(span: SpanNode): void {
    const l = this.spanList;
    if (l === undefined) this.spanList = span;
    else if (l instanceof SpanNode) {
      if (l === span) return;
      this.toList(l, span);
    } else if (l[l.length - 1] !== span) l.push(span);
    else return;
    this.opened(span);
  }

  /**
   * Detaches the `count` of its spans that are in `spans`: one pass, however many, that ends at the last
   * of them (the oldest go first, and they were mostly attached first).
   */
  detachAll(spans: ReadonlySet<SpanNode>, count: number): void {
    const l = this.spanList;
    if (l === undefined) return;
    if (l instanceof SpanNode) {
      if (spans.has(l)) this.detach(l);
      return;
    }
    const x = this.extras!;
    const head = x.head;
    let i = head;
    let removed = 0;
    for (; i < l.length && removed < count; i++) {
      const s = l[i];
      if (spans.has(s)) {
        this.closed(s);
        removed++;
      }
    }
    if (removed === 0) return;
    // l[head, i) holds the ones that go and the ones kept before the last that goes: the kept ones move to
    // the end of that range, in their order, and the slots before them are emptied.
    let w = i;
    for (let k = i - 1; k >= head; k--) {
      const s = l[k];
      if (!spans.has(s)) l[--w] = s;
    }
    for (let k = head; k < w; k++) l[k] = undefined as unknown as SpanNode;
    x.head = w;
    if (l.length - w <= 1) {
      this.spanList = l.length > w ? l[w] : undefined;
      x.head = 0;
    } else if (w > 16 && w * 2 > l.length) {
      // Mostly empty slots: the rest moves to the front, once for as many passes as it took to empty them.
      l.splice(0, w);
      x.head = 0;
    }
    this.fromList();
  }

  /** Detaches a span. */
  detach(span: SpanNode): void {
    const l = this.spanList;
    if (l === span) this.spanList = undefined;
    else if (Array.isArray(l)) {
      const x = this.extras!;
      const i = l.indexOf(span, x.head);
      if (i < 0) return;
      l.splice(i, 1);
      if (l.length - x.head === 1) {
        this.spanList = l[x.head];
        x.head = 0;
      }
    } else return;
    this.closed(span);
    this.fromList();
  }

  /**
   * Its tails, kept for a task with several spans (a thread, whose history is long) by what derives it,
   * and dropped by what changes its waits or holds otherwise (undefined: not known, walk the lists).
   */
  get tails(): Tails | undefined {
    return Array.isArray(this.spanList) ? this.extras?.tails : undefined;
  }

  set tails(v: Tails | undefined) {
    if (v !== undefined ? Array.isArray(this.spanList) : this.extras !== undefined) this.x().tails = v;
  }

  /** Holds handed over to this task by ended span-tasks below it. */
  get inherited(): readonly HoldIv[] {
    return this.extras?.inherited ?? NONE;
  }

  set inherited(v: readonly HoldIv[]) {
    if (v.length || this.extras) this.x().inherited = v;
  }

  /** The task's cert.issue .. cert.ready intervals. */
  get issues(): readonly IssueIv[] {
    return this.extras?.issues ?? NONE;
  }

  set issues(v: readonly IssueIv[]) {
    if (v.length || this.extras) this.x().issues = v;
  }

  /** Lock-order edges: locks this task took while holding others. */
  get orders(): readonly OrderEdge[] {
    return this.extras?.orders ?? NONE;
  }

  set orders(v: readonly OrderEdge[]) {
    if (v.length || this.extras) this.x().orders = v;
  }

  /** cert.ready events of this task (they end every wait for the cert, in any task). */
  get readies(): readonly Ready[] | undefined {
    return this.extras?.readies;
  }

  set readies(v: readonly Ready[] | undefined) {
    if (v || this.extras) this.x().readies = v;
  }

  /** lock.release events that matched no hold of this task: they may end an inherited hold. */
  get orphanReleases(): readonly OrphanRelease[] {
    return this.extras?.orphanReleases ?? NONE;
  }

  set orphanReleases(v: readonly OrphanRelease[]) {
    if (v.length || this.extras) this.x().orphanReleases = v;
  }

  private x(): TaskExtras {
    return (this.extras ??= new TaskExtras());
  }
}

/** A task's key, unique in the graph: its instance and its id. */
export function taskKey(t: TaskNode): string {
  return t.instance + '\u0001' + t.taskId;
}

/** Orders tasks by key. */
export function byTaskKey(a: TaskNode, b: TaskNode): number {
  return a.instance < b.instance ? -1 : a.instance > b.instance ? 1 : a.taskId < b.taskId ? -1 : a.taskId > b.taskId ? 1 : 0;
}
