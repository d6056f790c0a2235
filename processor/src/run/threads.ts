/**
 * What waitgraph's worker threads share (the Kafka thread of `waitgraph run`, kafka-thread.ts; the decode
 * stage's thread of `--role both`, scale/decode-thread.ts): how errors and log lines cross to the event
 * loop, the life of what a thread runs as the event loop sees it, and how a thread is started.
 */
import { constants, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { ERROR_CODES, WaitgraphError, type ErrorCode } from '../errors.js';
import type { SourceMetrics, SourceStatus } from '../io/index.js';
import type { Logger, LogFields } from '../io/log.js';

/** An error as it crosses between threads. */
export interface WireError {
  message: string;
  code?: ErrorCode;
  retriable?: boolean;
}

/** What a thread says of the life of what it runs (`ThreadLife`). */
export type LifeMessage = { t: 'started' } | { t: 'start-failed'; error: WireError } | { t: 'status'; status: SourceStatus } | { t: 'stopped'; error?: WireError };

/** A log line from a thread. */
export type WireLog = { t: 'log'; level: 'info' | 'warn' | 'error'; message: string; fields?: LogFields };

/** A logger, on a thread, whose lines go to `send` (the event loop logs them as its own: `logWire`). */
export function relayLogger(send: (m: WireLog) => void): Logger {
  const record =
    (level: WireLog['level']) =>
    (message: string, fields?: LogFields): void =>
      send({ t: 'log', level, message, fields: fields === undefined ? undefined : wireFields(fields) });
  return { info: record('info'), warn: record('warn'), error: record('error') };
}

/** Log fields as they can be cloned: errors as their message. */
function wireFields(fields: LogFields): LogFields {
  const out: LogFields = {};
  for (const [k, v] of Object.entries(fields)) out[k] = v instanceof Error ? v.message : typeof v === 'function' ? String(v) : v;
  return out;
}

/** Logs a thread's line on the event loop. */
export function logWire(logger: Logger, m: WireLog): void {
  logger[m.level](m.message, m.fields);
}

/**
 * The metrics a thread's stage may update: its source's, and the spans it took in; and where the stage runs
 * on a thread, the thread's garbage collections (seconds each, by thread and kind: `relayGc`).
 */
export type ThreadMetrics = SourceMetrics & {
  spansReceived: { inc(value?: number): void };
  threadGc?: { observe(labels: { thread: string; kind: string }, seconds: number): void };
};

/** A metric update from a thread. */
export type WireMetric = { t: 'metric'; name: 'badInput' | 'consumerLag' | 'spansReceived' | 'gc'; labels: Record<string, string>; value: number };

/** Metrics, on a thread, whose updates go to `send` (the event loop applies them to its own: `takeWireMetric`). */
export function relayMetrics(send: (m: WireMetric) => void): ThreadMetrics {
  return {
    badInput: { inc: (labels: { reason: string }, value?: number) => send({ t: 'metric', name: 'badInput', labels, value: value ?? 1 }) },
    consumerLag: { set: (labels: { topic: string; partition: string }, value: number) => send({ t: 'metric', name: 'consumerLag', labels, value }) },
    spansReceived: { inc: (value?: number) => send({ t: 'metric', name: 'spansReceived', labels: {}, value: value ?? 1 }) },
  };
}

/** Applies an update from the thread named `thread` (a label: `kafka`, `decode`) to the event loop's metrics. */
export function takeWireMetric(metrics: ThreadMetrics | undefined, m: WireMetric, thread: string): void {
  if (m.name === 'badInput') metrics?.badInput.inc(m.labels as { reason: string }, m.value);
  else if (m.name === 'consumerLag') metrics?.consumerLag.set(m.labels as { topic: string; partition: string }, m.value);
  else if (m.name === 'gc') metrics?.threadGc?.observe({ thread, kind: m.labels.kind }, m.value);
  else metrics?.spansReceived.inc(m.value);
}

/** The kinds of garbage collection as `nodejs_gc_duration_seconds` names them. */
const GC_KINDS = new Map<number, string>([
  [constants.NODE_PERFORMANCE_GC_MAJOR, 'major'],
  [constants.NODE_PERFORMANCE_GC_MINOR, 'minor'],
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL, 'incremental'],
  [constants.NODE_PERFORMANCE_GC_WEAKCB, 'weakcb'],
]);

/**
 * On a thread: sends each garbage collection of the thread's heap to the event loop as it is observed, its
 * seconds by kind (`gc` updates, for `waitgraph_thread_gc_duration_seconds`). The event loop's own are
 * prom-client's `nodejs_gc_duration_seconds`; a thread's heap is its own, and collected on its own.
 */
export function relayGc(send: (m: WireMetric) => void): PerformanceObserver {
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = GC_KINDS.get((e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind ?? -1) ?? 'unknown';
      send({ t: 'metric', name: 'gc', labels: { kind }, value: e.duration / 1000 });
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  return observer;
}

/**
 * Tells the event loop of the life of what a thread runs (`ThreadLife` hears it): started, or why not;
 * stopped, and why. `onStop` runs just before the stop is told. Starts it.
 */
export function reportLife(send: (m: LifeMessage) => void, runs: { start(): Promise<void>; stopped(): Promise<void> }, onStop?: () => void): void {
  const stopped = (error?: WireError) => {
    onStop?.();
    send(error === undefined ? { t: 'stopped' } : { t: 'stopped', error });
  };
  runs.stopped().then(
    () => stopped(),
    (err: unknown) => stopped(errorToWire(err)),
  );
  runs.start().then(
    () => send({ t: 'started' }),
    (err: unknown) => send({ t: 'start-failed', error: errorToWire(err) }),
  );
}

/** An error as it crosses to the other thread: its message, and its code where it is a WaitgraphError. */
export function errorToWire(err: unknown): WireError {
  if (err instanceof WaitgraphError) return { message: err.message, code: err.code, retriable: err.retriable };
  return { message: err instanceof Error ? err.message : String(err) };
}

/** A WaitgraphError again (an error that was none is `internal`, not retriable: a bug). */
export function errorFromWire(e: WireError): WaitgraphError {
  const code = e.code !== undefined && ERROR_CODES.includes(e.code) ? e.code : 'internal';
  return new WaitgraphError(code, e.message, { retriable: e.retriable ?? false });
}

/**
 * The life of a source or a stage run on a thread, as the event loop sees it (`KafkaThreadInput`,
 * `DecodeStageThread`): its life stage, its start, and its end, with the error that ended it.
 */
export class ThreadLife {
  /** Its life stage, as the thread last said. */
  state: SourceStatus = 'new';
  /** Settles when it has ended; rejects with the error that ended it. */
  readonly done: Promise<void>;
  private settle!: (err?: WaitgraphError) => void;
  private ended = false;
  private starting: { ok: () => void; fail: (err: unknown) => void } | undefined;

  /** @param name what runs, for errors (`KafkaThreadInput`) */
  constructor(private readonly name: string) {
    this.done = new Promise<void>((ok, fail) => {
      this.settle = (err) => (err === undefined ? ok() : fail(err));
    });
    // Nobody may be waiting on it.
    this.done.catch(() => {});
  }

  /** Whether it has ended. */
  get over(): boolean {
    return this.ended;
  }

  /** Begins its start (`post` asks the thread): resolves when the thread says it started, rejects if it could not, or ended first. */
  begin(post: () => void): Promise<void> {
    if (this.state !== 'new') throw new WaitgraphError('bad-usage', `${this.name}: start() called when ${this.state}`);
    this.state = 'starting';
    return new Promise<void>((ok, fail) => {
      this.starting = { ok, fail };
      post();
    });
  }

  /** What the thread said of its life. */
  hear(m: LifeMessage): void {
    switch (m.t) {
      case 'status':
        this.state = m.status;
        break;
      case 'started':
        this.starting?.ok();
        this.starting = undefined;
        break;
      case 'start-failed':
        this.starting?.fail(errorFromWire(m.error));
        this.starting = undefined;
        break;
      case 'stopped':
        this.end(m.error === undefined ? undefined : errorFromWire(m.error));
        break;
    }
  }

  /** It ended (the thread said so, or the thread is gone): `done` settles, with the error if any. */
  end(err: WaitgraphError | undefined): void {
    if (this.ended) return;
    this.ended = true;
    this.state = err === undefined ? 'stopped' : 'failed';
    this.starting?.fail(err ?? new WaitgraphError('internal', `${this.name}: stopped before it started`));
    this.starting = undefined;
    this.settle(err);
  }
}

/** The entry of waitgraph's worker threads: registers the TypeScript loader in the thread, then loads the module given. */
export const THREAD_ENTRY = new URL('./thread-entry.mjs', import.meta.url);
/**
 * The young generation of waitgraph's worker threads: their garbage dies young, as on the event loop. Where
 * the process has `--max-semi-space-size` (`waitgraph run`'s flags, bin/v8-flags.js), V8 gives every
 * isolate that size instead, these threads too.
 */
export const THREAD_YOUNG_GENERATION_MB = 192;
