/**
 * generic-pool (>= 3 < 4): `acquire` records `pool.wait` when the pool is exhausted (every unit it may
 * have is lent out or promised to an earlier request), `pool.checkout` when a resource is handed over and `pool.timeout` when the acquire
 * fails after waiting (acquireTimeoutMillis); `release` and `destroy` record `pool.checkin` on the span of
 * the acquire that took that very resource. `pool.size` is the pool's `max`. `use()` goes through both.
 *
 * `GenericPoolInstrumentation` patches `Pool.prototype` when the module is required;
 * `instrumentGenericPool()` wraps one pool in place (ESM, or to name the pool). With no recording span,
 * everything passes straight through.
 */
import type { Pool } from 'generic-pool';
import type { InstrumentationConfig } from '@opentelemetry/instrumentation';
import { Type, type Static } from '@sinclair/typebox';
import { poolEvents } from '../core/event-sets.js';
import { localId } from '../core/ids.js';
import { checkOptions } from '../core/options.js';
import { recordingSpan, swallow } from '../core/recorder.js';
import { currentTaskId } from '../core/task.js';
import { WaitgraphInstrumentation, wrapOwn, type AnyFn, type Wrappers } from './patching.js';
import { callUnnested, nesting, Trackers, type Hold, type Tracker, type Wait } from './tracker.js';

/** The generic-pool versions this instrumentation supports. */
export const GENERIC_POOL_VERSIONS = ['>=3.0.0 <4'];

type AnyPool = Pool<unknown>;

const trackers = new Trackers();
/** The hold of each resource on loan, per pool. */
const loans = new WeakMap<object, Map<unknown, Hold>>();

function trackerOf(pool: AnyPool): Tracker {
  return trackers.of(pool, () => poolEvents(localId('generic-pool'), pool.max));
}

function loansOf(pool: AnyPool): Map<unknown, Hold> {
  let map = loans.get(pool);
  if (map === undefined) loans.set(pool, (map = new Map()));
  return map;
}

function wrapAcquire(original: AnyFn): AnyFn {
  return function acquire(this: AnyPool) {
    const args = arguments as unknown as unknown[];
    if (nesting.depth > 0) return original.apply(this, args);
    const span = recordingSpan();
    if (span === undefined) return original.apply(this, args);
    const task = currentTaskId();
    let tracker: Tracker;
    let exhausted: boolean;
    try {
      tracker = trackerOf(this);
      // units this request can get without anyone giving one back: max - borrowed, shared with the
      // requests queued before it (those waiting for a creation included)
      exhausted = this.borrowed + this.pending >= this.max;
    } catch (err) {
      swallow('recording a generic-pool acquire', err);
      return original.apply(this, args);
    }
    const acquired: Promise<unknown> = callUnnested(original, this, args);
    const wait: Wait | undefined = exhausted ? tracker.waited(span, task) : undefined;
    return acquired.then(
      (resource) => {
        try {
          const hold = tracker.acquired(span, task, wait);
          if (hold !== undefined) loansOf(this).set(resource, hold);
        } catch (err) {
          swallow('recording a generic-pool checkout', err);
        }
        return resource;
      },
      (err: unknown) => {
        tracker.timedOut(wait);
        throw err;
      },
    );
  };
}

/** `release` and `destroy`: both give the resource back. */
function wrapGiveBack(original: AnyFn): AnyFn {
  return function giveBack(this: AnyPool, resource: unknown) {
    const args = arguments as unknown as unknown[];
    if (nesting.depth === 0) {
      try {
        const map = loans.get(this);
        const hold = map?.get(resource);
        if (hold !== undefined) {
          map!.delete(resource);
          trackers.find(this)?.released(hold);
        }
      } catch (err) {
        swallow('recording a generic-pool checkin', err);
      }
    }
    return callUnnested(original, this, args);
  };
}

const WRAPPERS: Wrappers = {
  acquire: wrapAcquire,
  release: wrapGiveBack,
  destroy: wrapGiveBack,
};

/** Options of `instrumentGenericPool`. */
export const GenericPoolOptionsSchema = Type.Object(
  {
    /** The `pool.name` the events carry. Default: `generic-pool@<process tag>#<n>`. */
    name: Type.Optional(Type.String({ minLength: 1 })),
  },
  { additionalProperties: false },
);
/** Options of `instrumentGenericPool`. */
export type GenericPoolOptions = Static<typeof GenericPoolOptionsSchema>;

/** Instruments one generic-pool Pool in place; returns it. */
export function instrumentGenericPool<P extends Pool<unknown>>(pool: P, options?: GenericPoolOptions): P {
  const o = checkOptions(GenericPoolOptionsSchema, options, 'instrumentGenericPool');
  trackers.set(pool, poolEvents(o.name ?? localId('generic-pool'), pool.max));
  wrapOwn(pool, WRAPPERS);
  return pool;
}

/** Configuration of `GenericPoolInstrumentation`. */
export type GenericPoolInstrumentationConfig = InstrumentationConfig;

/** Patches generic-pool's `Pool.prototype` when the module is loaded. */
export class GenericPoolInstrumentation extends WaitgraphInstrumentation<GenericPoolInstrumentationConfig> {
  constructor(config: GenericPoolInstrumentationConfig = {}) {
    super('generic-pool', config);
  }

  protected init() {
    return this.prototypePatch('generic-pool', GENERIC_POOL_VERSIONS, (exports: { Pool: { prototype: object } }) => exports.Pool.prototype, WRAPPERS);
  }
}
