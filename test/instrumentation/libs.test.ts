/**
 * async-mutex and generic-pool, the real libraries, instrumented both ways: the contrib-style
 * instrumentations (the modules required after they are enabled) and the explicit wrap functions.
 */
import { createRequire } from 'node:module';
import { context, trace } from '@opentelemetry/api';
import type * as AsyncMutex from 'async-mutex';
import type * as GenericPool from 'generic-pool';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { ATTR, EVENT } from '../../schemas/index.js';
import {
  AsyncMutexInstrumentation,
  GenericPoolInstrumentation,
  instrumentAsyncMutex,
  instrumentAsyncSemaphore,
  instrumentGenericPool,
} from '../../instrumentation/index.js';
import { endedSpan, events, inSpan, names, sleep, startTracing } from './support/tracing.js';

const tracing = startTracing();
const { tracer } = tracing;
const instrumentations = [new AsyncMutexInstrumentation(), new GenericPoolInstrumentation()];
const require = createRequire(import.meta.url);
const am = require('async-mutex') as typeof AsyncMutex;
const gp = require('generic-pool') as typeof GenericPool;

beforeEach(() => tracing.exporter.reset());
afterAll(async () => {
  for (const i of instrumentations) i.disable();
  await tracing.shutdown();
});

/** Runs `fn` holding `mutex` in span `name`, for `millis`. */
function holdFor(mutex: AsyncMutex.MutexInterface, name: string, millis: number): Promise<string> {
  return inSpan(tracer, name, () =>
    mutex.runExclusive(async () => {
      await sleep(millis);
      return name;
    }),
  );
}

describe('async-mutex Mutex (AsyncMutexInstrumentation)', () => {
  it('records acquire and release, and a wait when taken', async () => {
    const mutex = new am.Mutex();
    expect(await Promise.all([holdFor(mutex, 'a', 20), holdFor(mutex, 'b', 0)])).toEqual(['a', 'b']);
    const a = endedSpan(tracing, 'a');
    const b = endedSpan(tracing, 'b');
    expect(names(a)).toEqual([EVENT.LOCK_ACQUIRE, EVENT.LOCK_RELEASE]);
    expect(names(b)).toEqual([EVENT.LOCK_WAIT, EVENT.LOCK_ACQUIRE, EVENT.LOCK_RELEASE]);
    const id = a.events[0]!.attributes![ATTR.LOCK_ID];
    expect(id).toMatch(/^async-mutex@/);
    expect(b.events.every((e) => e.attributes![ATTR.LOCK_ID] === id)).toBe(true);
    expect(a.events[0]!.attributes![ATTR.LOCK_KIND]).toBe('mutex');
  });

  it('records acquire() with its releaser, and a manual release()', async () => {
    const mutex = new am.Mutex();
    await inSpan(tracer, 'releaser', async () => {
      const release = await mutex.acquire();
      release();
      release(); // the library ignores a second call, and so do the events
    });
    await inSpan(tracer, 'manual', async () => {
      await mutex.acquire();
      mutex.release();
    });
    expect(names(endedSpan(tracing, 'releaser'))).toEqual([EVENT.LOCK_ACQUIRE, EVENT.LOCK_RELEASE]);
    expect(names(endedSpan(tracing, 'manual'))).toEqual([EVENT.LOCK_ACQUIRE, EVENT.LOCK_RELEASE]);
    expect(mutex.isLocked()).toBe(false);
  });

  it('records lock.timeout when withTimeout gives up, and nothing for the late grant it throws away', async () => {
    const mutex = new am.Mutex();
    const timed = am.withTimeout(mutex, 30, new Error('too slow'));
    const holder = holdFor(mutex, 'holder', 80);
    await sleep(5);
    await expect(inSpan(tracer, 'gave-up', () => timed.runExclusive(() => 'never'))).rejects.toThrow('too slow');
    await holder;
    await sleep(10);
    expect(names(endedSpan(tracing, 'gave-up'))).toEqual([EVENT.LOCK_WAIT, EVENT.LOCK_TIMEOUT]);
    // the wrapper names the lock it wraps
    expect(endedSpan(tracing, 'gave-up').events[0]!.attributes![ATTR.LOCK_ID]).toBe(
      endedSpan(tracing, 'holder').events[0]!.attributes![ATTR.LOCK_ID],
    );
    expect(mutex.isLocked()).toBe(false);
    // tryAcquire is withTimeout(…, 0)
    const hold = await mutex.acquire();
    await expect(inSpan(tracer, 'try', () => am.tryAcquire(mutex).acquire())).rejects.toBe(am.E_ALREADY_LOCKED);
    hold();
    expect(names(endedSpan(tracing, 'try'))).toEqual([EVENT.LOCK_WAIT, EVENT.LOCK_TIMEOUT]);
  });

  it('records lock.timeout on cancel(), which rejects with E_CANCELED as before', async () => {
    const mutex = new am.Mutex();
    const release = await mutex.acquire();
    const waiting = inSpan(tracer, 'cancelled', () => mutex.acquire());
    await sleep(5);
    mutex.cancel();
    await expect(waiting).rejects.toBe(am.E_CANCELED);
    release();
    expect(names(endedSpan(tracing, 'cancelled'))).toEqual([EVENT.LOCK_WAIT, EVENT.LOCK_TIMEOUT]);
  });

  it('passes results and errors of runExclusive through', async () => {
    const mutex = new am.Mutex();
    const failure = new SyntaxError('bad');
    await expect(
      inSpan(tracer, 'err', () =>
        mutex.runExclusive(() => {
          throw failure;
        }),
      ),
    ).rejects.toBe(failure);
    expect(mutex.isLocked()).toBe(false);
    expect(await mutex.runExclusive(() => 5)).toBe(5);
  });
});

describe('async-mutex Semaphore', () => {
  it('is a pool: checkout and checkin through runExclusive, pool.wait when out of units', async () => {
    const sem = instrumentAsyncSemaphore(new am.Semaphore(2), { name: 'uploads' });
    const use = (name: string) => inSpan(tracer, name, () => sem.runExclusive(async (value) => (await sleep(20), value)));
    expect(await Promise.all([use('s1'), use('s2'), use('s3')])).toEqual([2, 1, 1]);
    const attrs = { [ATTR.POOL_NAME]: 'uploads', [ATTR.POOL_SIZE]: 2 };
    expect(events(endedSpan(tracing, 's1'))).toEqual([
      { name: EVENT.POOL_CHECKOUT, attributes: attrs },
      { name: EVENT.POOL_CHECKIN, attributes: { [ATTR.POOL_NAME]: 'uploads' } },
    ]);
    expect(names(endedSpan(tracing, 's3'))).toEqual([EVENT.POOL_WAIT, EVENT.POOL_CHECKOUT, EVENT.POOL_CHECKIN]);
    expect(sem.getValue()).toBe(2);
  });
});

describe('instrumentAsyncMutex', () => {
  it('names the lock, and records once over the patched prototype', async () => {
    const mutex = instrumentAsyncMutex(new am.Mutex(), { id: 'inventory/sku-1' });
    await Promise.all([holdFor(mutex, 'x', 10), holdFor(mutex, 'y', 0)]);
    expect(events(endedSpan(tracing, 'y'))).toEqual([
      { name: EVENT.LOCK_WAIT, attributes: { [ATTR.LOCK_ID]: 'inventory/sku-1', [ATTR.LOCK_KIND]: 'mutex' } },
      { name: EVENT.LOCK_ACQUIRE, attributes: { [ATTR.LOCK_ID]: 'inventory/sku-1', [ATTR.LOCK_KIND]: 'mutex' } },
      { name: EVENT.LOCK_RELEASE, attributes: { [ATTR.LOCK_ID]: 'inventory/sku-1' } },
    ]);
  });

  it('instruments a withTimeout wrapper as the lock it wraps', async () => {
    const mutex = instrumentAsyncMutex(new am.Mutex(), { id: 'L' });
    const timed = instrumentAsyncMutex(am.withTimeout(mutex, 20), { of: mutex });
    const release = await mutex.acquire();
    await expect(inSpan(tracer, 'timed', () => timed.acquire())).rejects.toBe(am.E_TIMEOUT);
    release();
    expect(events(endedSpan(tracing, 'timed')).map((e) => [e.name, e.attributes[ATTR.LOCK_ID]])).toEqual([
      [EVENT.LOCK_WAIT, 'L'],
      [EVENT.LOCK_TIMEOUT, 'L'],
    ]);
  });
});

describe('generic-pool', () => {
  function makePool(max: number, options: GenericPool.Options = {}) {
    let n = 0;
    return gp.createPool({ create: async () => ({ id: ++n }), destroy: async () => {} }, { max, ...options });
  }

  it('records one wait when 3 users share 2 resources, checkin on the span that took each', async () => {
    const pool = instrumentGenericPool(makePool(2), { name: 'sockets' });
    const use = (name: string) => inSpan(tracer, name, () => pool.use(async (r) => (await sleep(20), r.id)));
    const ids = await Promise.all([use('p1'), use('p2'), use('p3')]);
    expect(ids.slice(0, 2).sort()).toEqual([1, 2]);
    const attrs = { [ATTR.POOL_NAME]: 'sockets', [ATTR.POOL_SIZE]: 2 };
    const shapes = ['p1', 'p2', 'p3'].map((n) => names(endedSpan(tracing, n)));
    expect(shapes).toEqual([
      [EVENT.POOL_CHECKOUT, EVENT.POOL_CHECKIN],
      [EVENT.POOL_CHECKOUT, EVENT.POOL_CHECKIN],
      [EVENT.POOL_WAIT, EVENT.POOL_CHECKOUT, EVENT.POOL_CHECKIN],
    ]);
    expect(endedSpan(tracing, 'p3').events[0]!.attributes).toEqual(attrs);
    await pool.drain();
    await pool.clear();
  });

  it('puts the checkin on the span that took the resource, wherever release is called (patched prototype)', async () => {
    const pool = makePool(1, { acquireTimeoutMillis: 30 });
    const taker = tracer.startSpan('taker');
    const resource = await context.with(trace.setSpan(context.active(), taker), () => pool.acquire());
    await expect(inSpan(tracer, 'starved', () => pool.acquire())).rejects.toMatchObject({ name: 'TimeoutError' });
    await inSpan(tracer, 'other', () => pool.release(resource));
    taker.end();
    expect(names(endedSpan(tracing, 'taker'))).toEqual([EVENT.POOL_CHECKOUT, EVENT.POOL_CHECKIN]);
    expect(names(endedSpan(tracing, 'other'))).toEqual([]);
    expect(names(endedSpan(tracing, 'starved'))).toEqual([EVENT.POOL_WAIT, EVENT.POOL_TIMEOUT]);
    expect(endedSpan(tracing, 'taker').events[0]!.attributes![ATTR.POOL_NAME]).toMatch(/^generic-pool@/);
    expect(endedSpan(tracing, 'taker').events[0]!.attributes![ATTR.POOL_SIZE]).toBe(1);
    await expect(pool.release(resource)).rejects.toThrow('Resource not currently part of this pool');
    await pool.drain();
    await pool.clear();
  });
});
