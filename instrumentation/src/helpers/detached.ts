/**
 * `detached()`: starts fire-and-forget work as a span of its own with `task.detached = true`, so the
 * detector does not make the parent wait for it, and as a task of its own (a new `task.id`). The span is
 * a child of the active span, so the trace still shows who started the work, and ends when the work
 * settles (with the error recorded when it fails). The returned promise settles like the work itself:
 * ignoring it keeps an unhandled rejection unhandled, exactly as calling the function directly would.
 */
import { context, SpanStatusCode, trace, type Attributes } from '@opentelemetry/api';
import { ATTR } from '../../../schemas/index.js';
import { newTaskId } from '../core/ids.js';
import { observe } from '../core/observe.js';
import { SCOPE_NAME, SCOPE_VERSION, swallow } from '../core/recorder.js';
import { contextWithTask } from '../core/task.js';

/** Options of `detached`. */
export interface DetachedOptions {
  /** More attributes for the detached span. Default: none. */
  attributes?: Attributes;
}

/** Starts `fn` as detached work in a span named `name`; returns its promise. */
export function detached<T>(name: string, fn: () => T | PromiseLike<T>, options: DetachedOptions = {}): Promise<T> {
  const taskCtx = contextWithTask(context.active(), newTaskId());
  const span = trace
    .getTracer(SCOPE_NAME, SCOPE_VERSION)
    .startSpan(name, { attributes: { ...options.attributes, [ATTR.TASK_DETACHED]: true } }, taskCtx);
  return context.with(trace.setSpan(taskCtx, span), () =>
    observe(fn, (ok, error) => {
      try {
        if (!ok) {
          span.recordException(error instanceof Error ? error : String(error));
          span.setStatus({ code: SpanStatusCode.ERROR });
        }
        span.end();
      } catch (err) {
        swallow('ending a detached span', err);
      }
    }),
  );
}
