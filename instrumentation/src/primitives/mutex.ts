/**
 * An instrumented mutex for async code: FIFO, not reentrant, with abandonment through an AbortSignal.
 * It records `lock.acquire` / `lock.release` on the span active at the acquire, `lock.wait` only when the
 * acquire has to queue, and `lock.timeout` when a queued acquire is abandoned.
 */
import { Type, type Static } from '@sinclair/typebox';
import { lockEvents } from '../core/event-sets.js';
import { localId } from '../core/ids.js';
import { checkOptions } from '../core/options.js';
import { Permits, type AcquireOptions, type Release } from './permits.js';

/** Options of a Mutex. */
export const MutexOptionsSchema = Type.Object(
  {
    /**
     * The `lock.id` the events carry. Give the same id in every service that takes the same shared lock.
     * Default: `<name>@<process tag>#<n>`, unique to this mutex.
     */
    id: Type.Optional(Type.String({ minLength: 1 })),
    /** A readable name that starts the default id. Default: `mutex`. */
    name: Type.Optional(Type.String({ minLength: 1 })),
    /** The `lock.kind` the events carry. Default: `mutex`. */
    kind: Type.Optional(Type.String({ minLength: 1 })),
  },
  { additionalProperties: false },
);
/** Options of a Mutex (the static type of the schema above). */
export type MutexOptions = Static<typeof MutexOptionsSchema>;

/** An instrumented async mutex. */
export class Mutex {
  /** The `lock.id` of this mutex. */
  readonly id: string;
  readonly #permits: Permits;

  constructor(options?: MutexOptions) {
    const o = checkOptions(MutexOptionsSchema, options, 'Mutex');
    const kind = o.kind ?? 'mutex';
    this.id = o.id ?? localId(kind, o.name);
    this.#permits = new Permits(1, lockEvents(this.id, kind));
  }

  /** Acquires the mutex; resolves to the function that releases it. */
  acquire(options?: AcquireOptions): Promise<Release> {
    return this.#permits.acquire(options?.signal);
  }

  /** Acquires the mutex if it is free now; returns its release function, or undefined. */
  tryAcquire(): Release | undefined {
    return this.#permits.tryAcquire();
  }

  /** Runs `fn` holding the mutex, and releases it however `fn` ends. */
  runExclusive<T>(fn: () => T | PromiseLike<T>, options?: AcquireOptions): Promise<T> {
    return this.#permits.run(fn, options?.signal);
  }

  /** Whether the mutex is held now. */
  isLocked(): boolean {
    return this.#permits.free === 0;
  }
}
