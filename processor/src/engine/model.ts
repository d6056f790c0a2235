/**
 * The engine's in-memory model: spans (the newest version of each), tasks, and the intervals of waiting,
 * holding and issuing derived from their events.
 *
 * Times are unix nanoseconds in doubles. An interval is `[start, end]`; an open one has `end = OPEN`
 * (Infinity). A view of the graph at time `t` sees the intervals with `start < t <= end`; the present is
 * the view at `NOW` (Infinity), which sees exactly the open intervals.
 */
import type { Attributes } from '../model/span.js';

/** The end of an interval that has not ended. */
export const OPEN = Number.POSITIVE_INFINITY;
/** The view of the present. */
export const NOW = Number.POSITIVE_INFINITY;

/** Whether an interval is active in the view at `t`. */
export function activeAt(start: number, end: number, t: number): boolean {
  return start < t && end >= t;
}

/** One wait-vocabulary event, resolved to its task. */
export interface EventNode {
  name: string;
  time: number;
  /** Position among the events of its span, for a stable order of simultaneous events. */
  index: number;
  task: TaskNode;
  attrs: Attributes;
  span: SpanNode;
}

/** The newest version of one span. */
export interface SpanNode {
  traceId: string;
  spanId: string;
  /** The parent's span id (in the same trace), if any. */
  parentSpanId: string | undefined;
  name: string;
  start: number;
  /** OPEN while the span has not ended. */
  end: number;
  /** The service instance: service.name, plus service.instance.id where set. */
  instance: string;
  /** The task whose span this is (for parent/child waits and hold hand-over). */
  task: TaskNode;
  detached: boolean;
  /** `http.request.resend_count`, or -1 where the span is not a retry attempt. */
  attempt: number;
  /** Wait-vocabulary events carried by the span itself (the other span events are not kept). */
  events: EventNode[];
  /** Wait events that arrived as log records for this span. */
  logEvents: EventNode[] | undefined;
  /** Whether only log events have been seen for this span so far. */
  placeholder: boolean;
  /** How many span events the version had (for choosing the newest version). */
  eventCount: number;
  /** The latest event time of the version (for choosing the newest version). */
  lastEventTime: number;
  /** When the processor last saw a version of this span (caller's clock), for staleness. */
  observedAt: number;
  /** Set when no fresh snapshot came in time: its waits and holds are not trusted. */
  stale: boolean;
}

/** The kinds of wait interval. */
export type WaitIvKind = 'lock' | 'pool' | 'rpc' | 'cert' | 'task';

/** One wait of a task. */
export interface WaitIv {
  task: TaskNode;
  kind: WaitIvKind;
  /** lock.id, pool.name or cert.id; for rpc the callee's intake pool, or ''; for task ''. */
  res: string;
  /** lock mode for lock waits, join mode for task waits. */
  mode: 'exclusive' | 'shared' | 'all' | 'any';
  lockKind: string | undefined;
  /** Pool capacity where known, else 0. */
  size: number;
  /** task.wait.on, for task waits. */
  on: string[] | undefined;
  span: SpanNode;
  start: number;
  end: number;
  /** The event (or `span.end`) that ended the wait. */
  endedBy: string | undefined;
}

/** One hold of a lock or of one pool unit. */
export interface HoldIv {
  /** The task that took it. */
  origin: TaskNode;
  /** Set when the span-task that took it ended with the hold still open. */
  handover: Handover | undefined;
  kind: 'lock' | 'pool';
  res: string;
  mode: 'exclusive' | 'shared';
  lockKind: string | undefined;
  size: number;
  span: SpanNode;
  start: number;
  end: number;
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
export interface IssueIv {
  task: TaskNode;
  cert: string;
  span: SpanNode;
  start: number;
  end: number;
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

/** One task: a thread, a goroutine, an async flow, or a span. */
export interface TaskNode {
  instance: string;
  service: string;
  instanceId: string | undefined;
  taskId: string;
  /** Whether the task is its span (no task.id or thread.id). */
  spanTask: boolean;
  /** Spans whose task this is, or that carry events of this task. */
  spans: SpanNode[];
  waits: WaitIv[];
  holds: HoldIv[];
  /** Holds handed over to this task by ended span-tasks below it. */
  inherited: HoldIv[];
  issues: IssueIv[];
  /** Lock-order edges: locks this task took while holding others. */
  orders: OrderEdge[];
  /** cert.ready events of this task (they end every wait for the cert, in any task). */
  readies: { cert: string; time: number }[] | undefined;
  /** lock.release events that matched no hold of this task: they may end an inherited hold. */
  orphanReleases: { lock: string; time: number }[];
}

/** A task's key, unique in the graph: its instance and its id. */
export function taskKey(t: TaskNode): string {
  return t.instance + '\u0001' + t.taskId;
}

/** Orders tasks by key. */
export function byTaskKey(a: TaskNode, b: TaskNode): number {
  return a.instance < b.instance ? -1 : a.instance > b.instance ? 1 : a.taskId < b.taskId ? -1 : a.taskId > b.taskId ? 1 : 0;
}
