/**
 * async-mutex (>= 0.4 < 1): its Mutex records lock events, its Semaphore pool events, and the wrappers
 * `withTimeout()` / `tryAcquire()` make of either record `*.timeout` when they give up.
 *
 * Two ways in, recording the same events:
 * - `AsyncMutexInstrumentation` (the opentelemetry-js-contrib shape) patches the prototypes of Mutex and
 *   Semaphore and the `withTimeout` export when the module is required (or imported, with the
 *   import-in-the-middle hook registered);
 * - `instrumentAsyncMutex()` / `instrumentAsyncSemaphore()` wrap one instance, for ESM code without the
 *   hook, and name the lock or pool.
 *
 * How the library is seen: an acquire that finds the lock taken (`isLocked()`, or fewer units left than
 * the weight) records a wait; the grant records an acquire. A Mutex's releases all end in its inner
 * semaphore's `release` (releaser, `runExclusive`, manual `mutex.release()`), which ends its single hold
 * there. A Semaphore's releaser is wrapped to record the checkin on the acquirer's span; its manual
 * `release(weight)` cannot be matched to a hold and is not recorded (use the releaser). `runExclusive` of
 * a Mutex is re-expressed with the (instrumented) `acquire`, exactly as the library does it through its
 * inner semaphore. With no recording span everything passes straight through.
 */
import type { MutexInterface, SemaphoreInterface } from 'async-mutex';
import { InstrumentationNodeModuleDefinition, InstrumentationNodeModuleFile } from '@opentelemetry/instrumentation';
import type { InstrumentationConfig } from '@opentelemetry/instrumentation';
import { Type, type Static } from '@sinclair/typebox';
import { lockEvents, poolEvents } from '../core/event-sets.js';
import { localId } from '../core/ids.js';
import { checkOptions } from '../core/options.js';
import { recordingSpan, swallow } from '../core/recorder.js';
import { currentTaskId } from '../core/task.js';
import { WaitgraphInstrumentation, wrapOwn, type AnyFn, type Wrappers } from './patching.js';
import { callUnnested, nesting, Trackers, type Hold, type Tracker, type Wait } from './tracker.js';

/** The async-mutex versions this instrumentation supports. */
export const ASYNC_MUTEX_VERSIONS = ['>=0.4.0 <1'];

type Kind = 'lock' | 'pool';
/** A Mutex, a Semaphore, or what withTimeout/tryAcquire made of one. */
type LockLike = MutexInterface | SemaphoreInterface;

const trackers = new Trackers();
/** The lock or semaphore each wrapper (withTimeout, tryAcquire) stands for. */
const aliases = new WeakMap<object, object>();

function defaultEvents(kind: Kind) {
  return kind === 'lock' ? lockEvents(localId('async-mutex'), 'mutex') : poolEvents(localId('async-semaphore'), undefined);
}

function trackerOf(self: object, kind: Kind): Tracker {
  const target = aliases.get(self) ?? self;
  return trackers.of(target, () => defaultEvents(kind));
}

/** Whether this acquire will have to queue. */
function mustWait(self: LockLike, kind: Kind, weight: unknown): boolean {
  if (kind === 'lock') return self.isLocked();
  const w = typeof weight === 'number' ? weight : 1;
  return w > (self as SemaphoreInterface).getValue();
}

function wrapReleaser(tracker: Tracker, hold: Hold | undefined, releaser: () => void): () => void {
  if (hold === undefined) return releaser;
  return function releaseHold(this: unknown) {
    try {
      tracker.released(hold);
    } catch (err) {
      swallow('recording an async-mutex release', err);
    }
    return releaser.apply(this);
  };
}

/** The Mutex each inner semaphore belongs to (async-mutex builds a Mutex on a Semaphore of 1). */
const mutexOf = new WeakMap<object, object>();

/** Notes a Mutex's inner semaphore, whose `release` is where every release of the Mutex ends up. */
function noteInner(mutex: object): object | undefined {
  const inner = (mutex as { _semaphore?: object })._semaphore;
  if (typeof inner === 'object' && inner !== null && !mutexOf.has(inner)) mutexOf.set(inner, mutex);
  return inner;
}

/**
 * The `acquire` wrapper for objects of `kind`.
 *
 * A lock that is free is granted synchronously inside `acquire`, so the acquire is recorded then and the
 * library's own promise is returned untouched: no extra tick, no extra promise. Its release is recorded
 * where every release of a Mutex ends up, its inner semaphore's `release`. Only an acquire that waits
 * (or a semaphore's, whose releases cannot be told apart) is followed through a derived promise.
 */
function wrapAcquire(original: AnyFn, kind: Kind): AnyFn {
  return function acquire(this: LockLike) {
    // eslint-disable-next-line prefer-rest-params
    const args = arguments as unknown as unknown[];
    if (nesting.depth > 0) return original.apply(this, args);
    const span = recordingSpan();
    if (span === undefined) return original.apply(this, args);
    let tracker: Tracker;
    let wait: Wait | undefined;
    const task = currentTaskId();
    try {
      tracker = trackerOf(this, kind);
      if (kind === 'lock' && !tracker.innerNoted) tracker.innerNoted = noteInner(aliases.get(this) ?? this) !== undefined;
      if (mustWait(this, kind, args[0])) wait = tracker.waited(span, task);
      else if (kind === 'lock') {
        tracker.acquired(span, task);
        return callUnnested(original, this, args);
      }
    } catch (err) {
      swallow('recording an async-mutex acquire', err);
      return callUnnested(original, this, args);
    }
    const ticket: Promise<unknown> = callUnnested(original, this, args);
    return ticket.then(
      (granted) => {
        try {
          const hold = tracker.acquired(span, task, wait);
          if (Array.isArray(granted)) return [granted[0], wrapReleaser(tracker, hold, granted[1])];
        } catch (err) {
          swallow('recording an async-mutex acquire', err);
        }
        return granted;
      },
      (err: unknown) => {
        tracker.timedOut(wait);
        throw err;
      },
    );
  };
}

/** A Mutex's `runExclusive`, re-expressed with its instrumented `acquire`. */
function wrapRunExclusive(original: AnyFn): AnyFn {
  return async function runExclusive(this: MutexInterface, callback: () => unknown, priority?: number) {
    if (nesting.depth > 0 || recordingSpan() === undefined) return original.call(this, callback, priority);
    const release = await this.acquire(priority);
    try {
      return await callback();
    } finally {
      release();
    }
  };
}

/**
 * `release` of a semaphore: for the inner semaphore of a Mutex, the end of the Mutex's single hold,
 * whether it comes from a releaser, `runExclusive` or a manual `mutex.release()`.
 */
function wrapSemaphoreRelease(original: AnyFn): AnyFn {
  return function release(this: object) {
    // eslint-disable-next-line prefer-rest-params
    const args = arguments as unknown as unknown[];
    if (nesting.depth === 0) {
      const mutex = mutexOf.get(this);
      if (mutex !== undefined) {
        try {
          const tracker = trackers.find(mutex);
          if (tracker !== undefined && tracker.holds.size > 0) tracker.released(tracker.someHold());
        } catch (err) {
          swallow('recording an async-mutex release', err);
        }
      }
    }
    return original.apply(this, args);
  };
}

const MUTEX_WRAPPERS: Wrappers = { acquire: (f) => wrapAcquire(f, 'lock'), runExclusive: wrapRunExclusive };
const SEMAPHORE_WRAPPERS: Wrappers = { acquire: (f) => wrapAcquire(f, 'pool'), release: wrapSemaphoreRelease };
/** A withTimeout/tryAcquire wrapper of a Mutex: its runExclusive goes through its own acquire. */
const TIMED_MUTEX_WRAPPERS: Wrappers = { acquire: MUTEX_WRAPPERS.acquire! };
/** The inner semaphore of an explicitly instrumented Mutex. */
const INNER_WRAPPERS: Wrappers = { release: wrapSemaphoreRelease };

/** Options of `instrumentAsyncMutex`. */
export const AsyncMutexOptionsSchema = Type.Object(
  {
    /** The `lock.id` the events carry. Default: `async-mutex@<process tag>#<n>`. */
    id: Type.Optional(Type.String({ minLength: 1 })),
    /**
     * The lock this object stands for, when it is a `withTimeout()` / `tryAcquire()` wrapper: its events
     * then name that lock and share its holds. Default: the object is a lock of its own.
     */
    of: Type.Optional(Type.Object({}, { additionalProperties: true })),
  },
  { additionalProperties: false },
);
/** Options of `instrumentAsyncMutex`. */
export type AsyncMutexOptions = Static<typeof AsyncMutexOptionsSchema>;

/**
 * Instruments one async-mutex Mutex (or a `withTimeout` / `tryAcquire` wrapper of one, with `of`), in
 * place. Returns it.
 */
export function instrumentAsyncMutex<M extends MutexInterface>(mutex: M, options?: AsyncMutexOptions): M {
  const o = checkOptions(AsyncMutexOptionsSchema, options, 'instrumentAsyncMutex');
  if (o.of !== undefined) {
    aliases.set(mutex, o.of);
    if (o.id !== undefined) trackers.set(o.of, lockEvents(o.id, 'mutex'));
  } else if (o.id !== undefined) {
    trackers.set(mutex, lockEvents(o.id, 'mutex'));
  }
  // a Mutex (not a withTimeout wrapper, a plain object) runs runExclusive through its inner semaphore,
  // and every release of it ends in that semaphore's release
  const isMutex = Object.getPrototypeOf(mutex) !== Object.prototype;
  wrapOwn(mutex, isMutex ? MUTEX_WRAPPERS : TIMED_MUTEX_WRAPPERS);
  const inner = isMutex ? noteInner(mutex) : undefined;
  if (inner !== undefined) wrapOwn(inner, INNER_WRAPPERS);
  if (o.of !== undefined) {
    const ofInner = noteInner(o.of);
    if (ofInner !== undefined && !Object.prototype.hasOwnProperty.call(ofInner, 'release')) wrapOwn(ofInner, INNER_WRAPPERS);
  }
  return mutex;
}

/** Options of `instrumentAsyncSemaphore`. */
export const AsyncSemaphoreOptionsSchema = Type.Object(
  {
    /** The `pool.name` the events carry. Default: `async-semaphore@<process tag>#<n>`. */
    name: Type.Optional(Type.String({ minLength: 1 })),
    /** The `pool.size` the events carry: the semaphore's initial value. Default: its value now. */
    size: Type.Optional(Type.Integer({ minimum: 1 })),
    /** The semaphore this object stands for, when it is a `withTimeout()` wrapper. */
    of: Type.Optional(Type.Object({}, { additionalProperties: true })),
  },
  { additionalProperties: false },
);
/** Options of `instrumentAsyncSemaphore`. */
export type AsyncSemaphoreOptions = Static<typeof AsyncSemaphoreOptionsSchema>;

/** Instruments one async-mutex Semaphore (or a `withTimeout` wrapper of one, with `of`), in place. */
export function instrumentAsyncSemaphore<S extends SemaphoreInterface>(semaphore: S, options?: AsyncSemaphoreOptions): S {
  const o = checkOptions(AsyncSemaphoreOptionsSchema, options, 'instrumentAsyncSemaphore');
  const target = o.of ?? semaphore;
  if (o.of !== undefined) aliases.set(semaphore, o.of);
  const size = o.size ?? (o.of === undefined ? semaphore.getValue() : undefined);
  trackers.set(target, poolEvents(o.name ?? localId('async-semaphore'), size));
  wrapOwn(semaphore, { acquire: SEMAPHORE_WRAPPERS.acquire! });
  return semaphore;
}

/** `withTimeout` whose results are instrumented as wrappers of the lock or semaphore they wrap. */
function wrapWithTimeout(original: AnyFn): AnyFn {
  return function withTimeout(this: unknown, sync: LockLike, ...rest: unknown[]) {
    const result = original.call(this, sync, ...rest) as LockLike;
    try {
      const kind: Kind = typeof (sync as SemaphoreInterface).getValue === 'function' ? 'pool' : 'lock';
      aliases.set(result, aliases.get(sync) ?? sync);
      wrapOwn(result, kind === 'lock' ? TIMED_MUTEX_WRAPPERS : { acquire: SEMAPHORE_WRAPPERS.acquire! });
    } catch (err) {
      swallow('instrumenting an async-mutex withTimeout', err);
    }
    return result;
  };
}

/** Configuration of `AsyncMutexInstrumentation`. */
export type AsyncMutexInstrumentationConfig = InstrumentationConfig;

interface AsyncMutexModule {
  Mutex: { prototype: object };
  Semaphore: { prototype: object };
}


/** Patches async-mutex when it is loaded: Mutex and Semaphore prototypes, and `withTimeout`. */
export class AsyncMutexInstrumentation extends WaitgraphInstrumentation<AsyncMutexInstrumentationConfig> {
  constructor(config: AsyncMutexInstrumentationConfig = {}) {
    super('async-mutex', config);
  }

  protected init() {
    const withTimeoutFile = new InstrumentationNodeModuleFile(
      'async-mutex/lib/withTimeout.js',
      ASYNC_MUTEX_VERSIONS,
      (exports: object) => {
        this.wrapMethods(exports, { withTimeout: wrapWithTimeout });
        return exports;
      },
      (exports?: object) => this.unwrapMethods(exports, ['withTimeout']),
    );
    return new InstrumentationNodeModuleDefinition(
      'async-mutex',
      ASYNC_MUTEX_VERSIONS,
      (exports: AsyncMutexModule) => {
        this.wrapMethods(exports.Mutex.prototype, MUTEX_WRAPPERS);
        this.wrapMethods(exports.Semaphore.prototype, SEMAPHORE_WRAPPERS);
        // the ESM build exports withTimeout as a plain binding; the CJS one as a getter (patched by file)
        if (Object.getOwnPropertyDescriptor(exports, 'withTimeout')?.writable === true) {
          this.wrapMethods(exports, { withTimeout: wrapWithTimeout });
        }
        return exports;
      },
      (exports?: AsyncMutexModule) => {
        this.unwrapMethods(exports?.Mutex.prototype, Object.keys(MUTEX_WRAPPERS));
        this.unwrapMethods(exports?.Semaphore.prototype, Object.keys(SEMAPHORE_WRAPPERS));
        this.unwrapMethods(exports, ['withTimeout']);
      },
      [withTimeoutFile],
    );
  }
}
