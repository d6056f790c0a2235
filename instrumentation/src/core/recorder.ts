/**
 * The one place where wait events are written: on the span as span events, as OTLP log records
 * (OTEP 4430: `eventName` is the event's name, the attributes are the event's, and the record's trace and
 * span ids are the span's), or both.
 *
 * Everything here is on the hot path of every instrumented lock, so it assumes little: callers first ask
 * `recordingSpan()` (one context read) and build no attributes when it says no, which is what keeps the
 * instrumentation a no-op with no SDK registered. Recording never throws: a failure is reported through
 * the OpenTelemetry `diag` logger and swallowed, so telemetry cannot break the host.
 */
import { context, diag, logs, trace, type Attributes, type Logger, type LoggerProvider, type Span } from '@opentelemetry/api';
import { ATTR, type EventName } from '../../../schemas/index.js';
import { WaitgraphError } from '../../../schemas/src/errors.js';
import { spanTasks } from './task.js';

/** Where wait events go. */
export type EventRecords = 'span-events' | 'log-records' | 'both';

/** Options of `configureWaitEvents`. */
export interface WaitEventsOptions {
  /**
   * Where wait events go: span events (what the partial-span snapshots carry), OTLP log records, or both.
   * Default: `'span-events'`.
   */
  records?: EventRecords;
  /** The LoggerProvider for log records. Default: the global one (`logs.getLoggerProvider()`). */
  loggerProvider?: LoggerProvider;
}

/** The instrumentation scope name of waitgraph's tracer and logger. */
export const SCOPE_NAME = 'waitgraph';
/** The version waitgraph reports as its instrumentation scope version. */
export const SCOPE_VERSION = '0.1.0';

let toSpans = true;
let logger: Logger | undefined;

/**
 * Chooses where wait events go, for the whole process. Log records need tracing too: a record names its
 * span by the trace and span ids of the span that is active when the event happens.
 */
export function configureWaitEvents(options: WaitEventsOptions = {}): void {
  const records = options.records ?? 'span-events';
  if (records !== 'span-events' && records !== 'log-records' && records !== 'both') {
    throw new WaitgraphError('bad-config', `configureWaitEvents: records must be 'span-events', 'log-records' or 'both', got ${String(records)}`);
  }
  toSpans = records !== 'log-records';
  logger = records === 'span-events' ? undefined : (options.loggerProvider ?? logs.getLoggerProvider()).getLogger(SCOPE_NAME);
}

/** The active span if it records, else undefined: the cheap test that guards every recording. */
export function recordingSpan(): Span | undefined {
  const span = trace.getActiveSpan();
  return span !== undefined && span.isRecording() ? span : undefined;
}

/** Records one wait event of `span`. Never throws. */
export function record(span: Span, name: EventName, attributes: Attributes): void {
  try {
    if (toSpans) span.addEvent(name, attributes);
    if (logger !== undefined) {
      logger.emit({
        eventName: name,
        attributes,
        timestamp: performance.timeOrigin + performance.now(),
        context: trace.setSpan(context.active(), span),
      });
    }
  } catch (err) {
    swallow(`recording ${name}`, err);
  }
}

/**
 * `base` with `task.id` added when the event's task is known and is not the span's own task (the one the
 * span carries as its attribute). `base` itself is returned unchanged otherwise, so callers can keep one
 * shared attribute object per lock.
 */
export function withTask(base: Attributes, span: Span, taskId: string | undefined): Attributes {
  if (taskId === undefined || spanTasks.get(span) === taskId) return base;
  return { ...base, [ATTR.TASK_ID]: taskId };
}

/** Reports an instrumentation failure through `diag` and carries on. */
export function swallow(what: string, err: unknown): void {
  try {
    diag.error(`waitgraph: ${what} failed`, err);
  } catch {
    // a broken diag logger must not break the host either
  }
}
