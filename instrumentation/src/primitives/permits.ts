/**
 * The counting core shared by the instrumented Mutex (one permit, lock events) and Semaphore (n permits,
 * pool events): a FIFO queue of waiters with direct hand-over, abandonment through an AbortSignal, and the
 * wait events recorded at the moment they happen.
 *
 * The uncontended path is the one that matters for overhead: it records only the acquire (no wait) and
 * allocates only the releaser. A wait event is recorded only when an acquire really has to queue. The
 * acquire event of a queued waiter is recorded when the permit is handed to it, on the span that was
 * active when it asked, so the event's time is the hand-over's, not the time its continuation runs.
 */
import type { Span } from '@opentelemetry/api';
import type { EventSet } from '../core/event-sets.js';
import { record, recordingSpan, withTask } from '../core/recorder.js';
import { currentTaskId } from '../core/task.js';

/** Releases what an acquire took. Calling it again does nothing. */
export type Release = () => void;

/** Options of one acquire. */
export interface AcquireOptions {
  /**
   * Abandons the wait when aborted: the acquire rejects with `signal.reason` and a `*.timeout` event is
   * recorded. Use `AbortSignal.timeout(ms)` for a timeout. Default: wait for as long as it takes.
   */
  signal?: AbortSignal;
}


interface Waiter {
  resolve: (release: Release) => void;
  reject: (reason: unknown) => void;
  span: Span | undefined;
  task: string | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/** A FIFO counting semaphore that records wait events. Internal: Mutex and Semaphore wrap it. */
export class Permits {
  #free: number;
  readonly #queue: Waiter[] = [];
  readonly #events: EventSet;

  constructor(size: number, events: EventSet) {
    this.#free = size;
    this.#events = events;
  }

  /** Permits not held now. */
  get free(): number {
    return this.#free;
  }

  /** Acquires waiting in the queue now. */
  get waiting(): number {
    return this.#queue.length;
  }

  /** Takes a permit, waiting in FIFO order when none is free. */
  acquire(signal?: AbortSignal): Promise<Release> {
    if (signal !== undefined && signal.aborted) return Promise.reject(signal.reason);
    const span = recordingSpan();
    if (this.#free > 0) {
      this.#free--;
      return Promise.resolve(this.#take(span, span === undefined ? undefined : currentTaskId()));
    }
    return this.#wait(span, signal);
  }

  /** Takes a permit if one is free now, without waiting. */
  tryAcquire(): Release | undefined {
    if (this.#free === 0) return undefined;
    this.#free--;
    const span = recordingSpan();
    return this.#take(span, span === undefined ? undefined : currentTaskId());
  }

  /** Runs `fn` holding a permit, and releases it however `fn` ends. */
  async run<T>(fn: () => T | PromiseLike<T>, signal: AbortSignal | undefined): Promise<T> {
    const release = await this.acquire(signal);
    try {
      return await fn();
    } finally {
      release();
    }
  }

  #take(span: Span | undefined, task: string | undefined): Release {
    if (span !== undefined) record(span, this.#events.acquire, withTask(this.#events.attributes, span, task));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (span !== undefined) record(span, this.#events.release, withTask(this.#events.releaseAttributes, span, task));
      this.#handOver();
    };
  }

  #handOver(): void {
    const next = this.#queue.shift();
    if (next === undefined) {
      this.#free++;
      return;
    }
    if (next.onAbort !== undefined) next.signal!.removeEventListener('abort', next.onAbort);
    next.resolve(this.#take(next.span, next.task));
  }

  #wait(span: Span | undefined, signal: AbortSignal | undefined): Promise<Release> {
    const task = span === undefined ? undefined : currentTaskId();
    return new Promise<Release>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, span, task, signal, onAbort: undefined };
      if (span !== undefined) record(span, this.#events.wait, withTask(this.#events.attributes, span, task));
      this.#queue.push(waiter);
      if (signal !== undefined) {
        waiter.onAbort = () => this.#abandon(waiter);
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
    });
  }

  #abandon(waiter: Waiter): void {
    const i = this.#queue.indexOf(waiter);
    if (i < 0) return;
    this.#queue.splice(i, 1);
    const span = waiter.span;
    if (span !== undefined) record(span, this.#events.timeout, withTask(this.#events.attributes, span, waiter.task));
    waiter.reject(waiter.signal!.reason);
  }
}
