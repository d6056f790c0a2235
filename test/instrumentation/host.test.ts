/**
 * The instrumentation never changes the host. With no SDK registered everything is a no-op that returns
 * the same results, errors and promise timing as the plain libraries; when recording fails (a broken span,
 * a throwing option hook, a throwing exporter) the failure goes to `diag` and the host goes on.
 */
import { context, diag, DiagLogLevel, trace, type DiagLogger, type Span } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { Mutex as PlainMutex, Semaphore as PlainSemaphore } from 'async-mutex';
import { createPool } from 'generic-pool';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AsyncMutexInstrumentation,
  certWait,
  detached,
  instrumentAsyncMutex,
  instrumentAsyncSemaphore,
  instrumentGenericPool,
  join,
  Mutex,
  RpcWait,
  RWLock,
  Semaphore,
  WaitSnapshotSpanProcessor,
} from '../../instrumentation/index.js';

/** How many microtask turns `promise` takes to settle. */
async function turns(promise: Promise<unknown>): Promise<number> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  let n = 0;
  while (!settled && n < 100) {
    await null;
    n++;
  }
  return n;
}

describe('with no SDK registered', () => {
  it('has no active span, and the instrumentation enables without one', () => {
    expect(trace.getActiveSpan()).toBeUndefined();
    const instrumentation = new AsyncMutexInstrumentation();
    expect(instrumentation.isEnabled()).toBe(true);
    instrumentation.disable();
  });

  it('keeps results, errors and promise timing of async-mutex and generic-pool', async () => {
    const plain = new PlainMutex();
    const wrapped = instrumentAsyncMutex(new PlainMutex(), { id: 'm' });
    expect(await turns(wrapped.acquire().then((r) => r()))).toBe(await turns(plain.acquire().then((r) => r())));
    expect(await wrapped.runExclusive(() => 'v')).toBe('v');
    const failure = new Error('inside');
    await expect(wrapped.runExclusive(() => Promise.reject(failure))).rejects.toBe(failure);
    expect(wrapped.isLocked()).toBe(false);

    const plainSem = new PlainSemaphore(2);
    const sem = instrumentAsyncSemaphore(new PlainSemaphore(2));
    expect(await sem.acquire()).toEqual([2, expect.any(Function)]);
    expect(await turns(sem.acquire())).toBe(await turns(plainSem.acquire()));

    const factory = { create: async () => ({}), destroy: async () => {} };
    const plainPool = createPool(factory, { max: 1 });
    const pool = instrumentGenericPool(createPool(factory, { max: 1 }));
    await plainPool.release(await plainPool.acquire());
    await pool.release(await pool.acquire());
    const a = plainPool.acquire();
    const b = pool.acquire();
    expect(await turns(b)).toBe(await turns(a));
    await Promise.all([plainPool.release(await a), pool.release(await b)]);
    await expect(pool.release({})).rejects.toThrow('Resource not currently part of this pool');
    for (const p of [plainPool, pool]) await p.drain().then(() => p.clear());
  });

  it('runs the primitives and helpers as plain code', async () => {
    const mutex = new Mutex();
    const lock = new RWLock();
    const sem = new Semaphore(1);
    expect(await mutex.runExclusive(() => 1)).toBe(1);
    expect(await lock.runShared(() => 2)).toBe(2);
    expect(await sem.use(() => 3)).toBe(3);
    expect(await join([() => 4, async () => 5])).toEqual([4, 5]);
    expect(await certWait('c', undefined, () => 6)).toBe(6);
    expect(await detached('bg', () => 7)).toBe(7);
  });
});

describe('when recording fails', () => {
  const errors: string[] = [];
  const logger: DiagLogger = {
    error: (message: string) => void errors.push(message),
    warn: (message: string) => void errors.push(message),
    info: () => {},
    debug: () => {},
    verbose: () => {},
  };

  beforeAll(() => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    diag.setLogger(logger, DiagLogLevel.WARN);
  });
  afterAll(() => {
    diag.disable();
    context.disable();
  });

  /** A recording span whose every write throws. */
  function brokenSpan(): Span {
    const span = trace.wrapSpanContext({ traceId: '1'.repeat(32), spanId: '2'.repeat(16), traceFlags: 1 });
    return Object.assign(Object.create(span) as Span, {
      isRecording: () => true,
      addEvent: () => {
        throw new Error('span broken');
      },
    });
  }

  it('logs through diag and leaves the lock working', async () => {
    errors.length = 0;
    const mutex = new Mutex();
    const wrapped = instrumentAsyncMutex(new PlainMutex());
    const result = await context.with(trace.setSpan(context.active(), brokenSpan()), async () => {
      const first = await mutex.runExclusive(() => 'still works');
      const second = await wrapped.runExclusive(() => 'this too');
      return [first, second];
    });
    expect(result).toEqual(['still works', 'this too']);
    expect(mutex.isLocked()).toBe(false);
    expect(errors).toContain('waitgraph: recording lock.acquire failed');
  });

  it('survives a throwing option hook and a throwing exporter', async () => {
    errors.length = 0;
    const wait = RpcWait.start(
      brokenSpan(),
      { origin: 'http://x', method: 'GET', path: '/' },
      {
        peerService: () => {
          throw new Error('hook broken');
        },
      },
    );
    expect(wait).toBeUndefined();
    expect(errors).toContain('waitgraph: recording an rpc wait failed');

    const exporter = {
      export: () => {
        throw new Error('exporter broken');
      },
      shutdown: async () => {},
    };
    const processor = new WaitSnapshotSpanProcessor(exporter, { intervalMillis: 20, minOpenMillis: 0 });
    const span = {
      spanContext: () => ({ traceId: '3'.repeat(32), spanId: '4'.repeat(16), traceFlags: 1 }),
      setAttribute: () => {},
      ended: false,
      events: [{ name: 'lock.wait', time: [Math.floor(Date.now() / 1000) - 1, 0], attributes: { 'lock.id': 'x' } }],
      attributes: {},
      links: [],
      status: { code: 0 },
    } as unknown as ReadableSpan & Span;
    processor.onStart(span, context.active());
    await new Promise((resolve) => setTimeout(resolve, 100));
    await processor.shutdown();
    expect(errors).toContain('waitgraph: exporting span snapshots failed');
  });
});
