/**
 * An instrumented counting semaphore, seen by the detector as a pool of `size` units: `pool.checkout` and
 * `pool.checkin` on the span active at the acquire, `pool.wait` only when every unit is taken, and
 * `pool.timeout` when a queued acquire is abandoned. FIFO, one unit per acquire.
 */
import { Type, type Static } from '@sinclair/typebox';
import { poolEvents } from '../core/event-sets.js';
import { localId } from '../core/ids.js';
import { checkOptions } from '../core/options.js';
import { Permits, type AcquireOptions, type Release } from './permits.js';

/** Options of a Semaphore. */
export const SemaphoreOptionsSchema = Type.Object(
  {
    /**
     * The `pool.name` the events carry. Give the same name in every service that shares the pool.
     * Default: `semaphore@<process tag>#<n>`, unique to this semaphore.
     */
    name: Type.Optional(Type.String({ minLength: 1 })),
  },
  { additionalProperties: false },
);
/** Options of a Semaphore (the static type of the schema above). */
export type SemaphoreOptions = Static<typeof SemaphoreOptionsSchema>;

/** An instrumented async semaphore: a pool of `size` interchangeable units. */
export class Semaphore {
  /** The `pool.name` of this semaphore. */
  readonly name: string;
  /** How many units the pool has (`pool.size`). */
  readonly size: number;
  readonly #permits: Permits;

  constructor(size: number, options?: SemaphoreOptions) {
    const o = checkOptions(SemaphoreOptionsSchema, options, 'Semaphore');
    checkOptions(Type.Integer({ minimum: 1 }), size, 'Semaphore size');
    this.size = size;
    this.name = o.name ?? localId('semaphore');
    this.#permits = new Permits(size, poolEvents(this.name, size));
  }

  /** Checks out one unit; resolves to the function that returns it. */
  acquire(options?: AcquireOptions): Promise<Release> {
    return this.#permits.acquire(options?.signal);
  }

  /** Checks out one unit if one is free now; returns the function that returns it, or undefined. */
  tryAcquire(): Release | undefined {
    return this.#permits.tryAcquire();
  }

  /** Runs `fn` holding one unit, and returns it however `fn` ends. */
  use<T>(fn: () => T | PromiseLike<T>, options?: AcquireOptions): Promise<T> {
    return this.#permits.run(fn, options?.signal);
  }

  /** Units free now. */
  get available(): number {
    return this.#permits.free;
  }

  /** Acquires waiting now. */
  get pending(): number {
    return this.#permits.waiting;
  }
}
