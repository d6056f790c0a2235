/**
 * Task identity for Node.js: a task is one async flow.
 *
 * The task id rides in the OpenTelemetry context, like the active span, so it follows every async
 * continuation the context manager follows (AsyncLocalStorage under the Node SDK) and costs nothing
 * extra per async hop. A flow with no task id in its context is not a task of its own: its events carry
 * no `task.id`, and the contract then treats the span that carries them as the task. That is right for a
 * request handled sequentially, where each span waits for its children. Flows that run side by side under
 * one span (the branches of a `Promise.all`) must be told apart, so `join()` and `detached()` give each
 * branch a task id of its own, and `runAsTask()` does it for any other flow.
 */
import { context, createContextKey, type Context } from '@opentelemetry/api';
import { newTaskId } from './ids.js';

const TASK_KEY = createContextKey('waitgraph task.id');

/** The task id carried by `ctx` (default: the active context), if any. */
export function currentTaskId(ctx: Context = context.active()): string | undefined {
  return ctx.getValue(TASK_KEY) as string | undefined;
}

/** `ctx` with `taskId` as its task. */
export function contextWithTask(ctx: Context, taskId: string): Context {
  return ctx.setValue(TASK_KEY, taskId);
}

/**
 * Runs `fn` as a task of its own: everything it starts, synchronously or asynchronously, carries the
 * task id (a new one unless given). Returns what `fn` returns, unchanged.
 */
export function runAsTask<T>(fn: () => T, taskId: string = newTaskId()): T {
  return context.with(contextWithTask(context.active(), taskId), fn);
}

/**
 * The task each span was started in, for spans that carry it as their `task.id` attribute (set by the
 * snapshot processor's `onStart`). Events on such a span from the same task need not repeat the id.
 */
export const spanTasks = new WeakMap<object, string>();
