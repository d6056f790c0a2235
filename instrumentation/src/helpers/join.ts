/**
 * `join()`: a `Promise.all` (or `any`, `allSettled`, `race`) whose branches are tasks of their own.
 *
 * Each branch runs with a new task id in its context, so the events of siblings that share a span are
 * not mistaken for one task (one branch waiting for a lock its sibling holds is not a self-deadlock). On
 * the span active at the call it records `task.wait` with `task.wait.on` = the branch task ids and
 * `task.wait.mode` (`all` for all/allSettled, `any` for any/race), then `task.resume` when the join
 * settles, or `task.timeout` when it is abandoned through the signal.
 */
import { context } from '@opentelemetry/api';
import { ATTR, EVENT, type TaskWaitMode } from '../../../schemas/index.js';
import { newTaskId } from '../core/ids.js';
import { observe } from '../core/observe.js';
import { record, recordingSpan, withTask } from '../core/recorder.js';
import { contextWithTask, currentTaskId } from '../core/task.js';

/** How a join combines its branches, named after the Promise combinator it uses. */
export type JoinMode = 'all' | 'any' | 'allSettled' | 'race';

/** Options of `join`. */
export interface JoinOptions<M extends JoinMode = JoinMode> {
  /** The combinator. Default: `'all'`. */
  mode?: M;
  /**
   * Abandons the join when aborted: it rejects with `signal.reason` and records `task.timeout`. The
   * branches are not cancelled (pass them the signal for that). Default: wait for as long as it takes.
   */
  signal?: AbortSignal;
}

/** One branch: a function that starts the work, called at once in its own task. */
export type Branch<T = unknown> = () => T | PromiseLike<T>;

type Results<B extends readonly Branch[]> = { -readonly [K in keyof B]: Awaited<ReturnType<B[K]>> };
type Settled<B extends readonly Branch[]> = { -readonly [K in keyof B]: PromiseSettledResult<Awaited<ReturnType<B[K]>>> };
type First<B extends readonly Branch[]> = Awaited<ReturnType<B[number]>>;

const COMBINE: Record<JoinMode, (promises: Promise<unknown>[]) => Promise<unknown>> = {
  all: (p) => Promise.all(p),
  allSettled: (p) => Promise.allSettled(p),
  any: (p) => Promise.any(p),
  race: (p) => Promise.race(p),
};

const WAIT_MODE: Record<JoinMode, TaskWaitMode> = { all: 'all', allSettled: 'all', any: 'any', race: 'any' };

/** Runs the branches as separate tasks and waits for all of them, like `Promise.all`. */
export function join<const B extends readonly Branch[]>(branches: B, options?: JoinOptions<'all'>): Promise<Results<B>>;
/** Runs the branches as separate tasks and waits for all to settle, like `Promise.allSettled`. */
export function join<const B extends readonly Branch[]>(branches: B, options: JoinOptions<'allSettled'>): Promise<Settled<B>>;
/** Runs the branches as separate tasks and waits for the first to fulfil (`any`) or settle (`race`). */
export function join<const B extends readonly Branch[]>(branches: B, options: JoinOptions<'any' | 'race'>): Promise<First<B>>;
export function join(branches: readonly Branch[], options: JoinOptions = {}): Promise<unknown> {
  const mode = options.mode ?? 'all';
  const signal = options.signal;
  const ids = branches.map(() => newTaskId());
  const parent = context.active();
  const started = branches.map((branch, i) =>
    context.with(contextWithTask(parent, ids[i]!), () => new Promise((resolve) => resolve(branch()))),
  );
  const combined = COMBINE[mode](started);

  const span = recordingSpan();
  if (span === undefined) return signal === undefined ? combined : abandonable(combined, signal, () => {});
  const task = currentTaskId(parent);
  record(
    span,
    EVENT.TASK_WAIT,
    withTask({ [ATTR.TASK_WAIT_ON]: ids, [ATTR.TASK_WAIT_MODE]: WAIT_MODE[mode] }, span, task),
  );
  let ended = false;
  const watched = observe(
    () => combined,
    () => {
      if (ended) return;
      ended = true;
      record(span, EVENT.TASK_RESUME, withTask({}, span, task));
    },
  );
  if (signal === undefined) return watched;
  return abandonable(watched, signal, () => {
    if (ended) return;
    ended = true;
    record(
      span,
      EVENT.TASK_TIMEOUT,
      withTask({ [ATTR.TASK_WAIT_ON]: ids, [ATTR.TASK_WAIT_MODE]: WAIT_MODE[mode] }, span, task),
    );
  });
}

/** `promise`, or a rejection with `signal.reason` as soon as the signal aborts (calling `onAbort` first). */
function abandonable<T>(promise: Promise<T>, signal: AbortSignal, onAbort: () => void): Promise<T> {
  if (signal.aborted) {
    onAbort();
    promise.catch(() => {}); // abandoned: its outcome no longer reaches anyone
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const abort = () => {
      onAbort();
      reject(signal.reason);
    };
    signal.addEventListener('abort', abort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', abort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', abort);
        reject(err);
      },
    );
  });
}
