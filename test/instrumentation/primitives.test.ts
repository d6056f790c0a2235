/**
 * The instrumented Mutex, RWLock and Semaphore under a real SDK: which events land on which span, that a
 * wait is recorded only when an acquire queues, abandonment through AbortSignal, and that results, errors
 * and ordering are those of a plain lock.
 */
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { ATTR, EVENT } from '../../schemas/index.js';
import { Mutex, RWLock, Semaphore } from '../../instrumentation/index.js';
import { endedSpan, events, inSpan, ms, names, sleep, startTracing } from './support/tracing.js';

const tracing = startTracing();
const { tracer } = tracing;

beforeEach(() => tracing.exporter.reset());
afterAll(() => tracing.shutdown());

/** A promise and the function that resolves it. */
function gate(): { opened: Promise<void>; open: () => void } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

describe('Mutex', () => {
  it('records only acquire and release when uncontended', async () => {
    const mutex = new Mutex({ name: 'cache' });
    const result = await inSpan(tracer, 'req', () => mutex.runExclusive(() => 42));
    expect(result).toBe(42);
    expect(events(endedSpan(tracing, 'req'))).toEqual([
      { name: EVENT.LOCK_ACQUIRE, attributes: { [ATTR.LOCK_ID]: mutex.id, [ATTR.LOCK_KIND]: 'mutex' } },
      { name: EVENT.LOCK_RELEASE, attributes: { [ATTR.LOCK_ID]: mutex.id } },
    ]);
    expect(mutex.id).toMatch(/^cache@[0-9a-f]{8}#\d+$/);
    expect(mutex.isLocked()).toBe(false);
  });

  it('records the wait of a queued acquire, and its acquire at the hand-over', async () => {
    const mutex = new Mutex({ id: 'orders-db/orders/42' });
    const held = gate();
    const first = inSpan(tracer, 'first', () => mutex.runExclusive(() => held.opened));
    const second = inSpan(tracer, 'second', () => mutex.runExclusive(() => 'second done'));
    await sleep(20);
    expect(mutex.isLocked()).toBe(true);
    held.open();
    expect(await second).toBe('second done');
    await first;
    const a = endedSpan(tracing, 'first');
    const b = endedSpan(tracing, 'second');
    expect(names(a)).toEqual([EVENT.LOCK_ACQUIRE, EVENT.LOCK_RELEASE]);
    expect(names(b)).toEqual([EVENT.LOCK_WAIT, EVENT.LOCK_ACQUIRE, EVENT.LOCK_RELEASE]);
    expect(b.events[0]!.attributes).toEqual({ [ATTR.LOCK_ID]: 'orders-db/orders/42', [ATTR.LOCK_KIND]: 'mutex' });
    // the waiter got the lock when the holder let go, not before (the SDK anchors each span's clock to
    // the wall clock at its start, so times on two spans agree only to about a millisecond)
    expect(ms(b.events[1]!.time)).toBeGreaterThanOrEqual(ms(a.events[1]!.time) - 2);
    expect(ms(b.events[1]!.time) - ms(b.events[0]!.time)).toBeGreaterThanOrEqual(15);
  });

  it('abandons a wait on abort: rejects with the reason, records lock.timeout, and skips the waiter', async () => {
    const mutex = new Mutex();
    const release = await mutex.acquire();
    const order: string[] = [];
    const gaveUp = inSpan(tracer, 'impatient', () => mutex.acquire({ signal: AbortSignal.timeout(30) }));
    const patient = inSpan(tracer, 'patient', async () => {
      const r = await mutex.acquire();
      order.push('patient');
      r();
    });
    await expect(gaveUp).rejects.toMatchObject({ name: 'TimeoutError' });
    release();
    await patient;
    expect(order).toEqual(['patient']);
    expect(names(endedSpan(tracing, 'impatient'))).toEqual([EVENT.LOCK_WAIT, EVENT.LOCK_TIMEOUT]);
    expect(names(endedSpan(tracing, 'patient'))).toEqual([EVENT.LOCK_WAIT, EVENT.LOCK_ACQUIRE, EVENT.LOCK_RELEASE]);
    expect(mutex.isLocked()).toBe(false);
    const aborted = new AbortController();
    aborted.abort(new Error('no longer needed'));
    await expect(mutex.acquire({ signal: aborted.signal })).rejects.toThrow('no longer needed');
  });

  it('passes errors through, releases on error, and ignores a second release', async () => {
    const mutex = new Mutex();
    await expect(
      inSpan(tracer, 'failing', () =>
        mutex.runExclusive(() => {
          throw new RangeError('boom');
        }),
      ),
    ).rejects.toThrow(RangeError);
    expect(mutex.isLocked()).toBe(false);
    const release = await mutex.acquire();
    release();
    release();
    expect(mutex.tryAcquire()).toBeTypeOf('function');
    expect(mutex.tryAcquire()).toBeUndefined();
    expect(names(endedSpan(tracing, 'failing'))).toEqual([EVENT.LOCK_ACQUIRE, EVENT.LOCK_RELEASE]);
  });

  it('rejects bad options with a bad-config error', () => {
    expect(() => new Mutex({ id: '' })).toThrow(expect.objectContaining({ code: 'bad-config' }));
    expect(() => new Mutex({ colour: 'red' } as never)).toThrow(/Mutex/);
  });
});

describe('RWLock', () => {
  it('lets readers share and makes a writer wait for them', async () => {
    const lock = new RWLock({ id: 'config' });
    const readersIn = gate();
    const r1 = inSpan(tracer, 'r1', () => lock.runShared(() => readersIn.opened));
    const r2 = inSpan(tracer, 'r2', () => lock.runShared(() => readersIn.opened));
    await sleep(5);
    expect(lock.readers).toBe(2);
    const w = inSpan(tracer, 'w', () => lock.runExclusive(() => lock.writeLocked));
    await sleep(5);
    // a reader that comes after a waiting writer queues behind it
    const r3 = inSpan(tracer, 'r3', () => lock.runShared(() => lock.readers));
    readersIn.open();
    expect(await w).toBe(true);
    expect(await r3).toBe(1);
    await Promise.all([r1, r2]);
    const shared = { [ATTR.LOCK_ID]: 'config', [ATTR.LOCK_KIND]: 'rwlock', [ATTR.LOCK_MODE]: 'shared' };
    const exclusive = { ...shared, [ATTR.LOCK_MODE]: 'exclusive' };
    expect(events(endedSpan(tracing, 'r1'))).toEqual([
      { name: EVENT.LOCK_ACQUIRE, attributes: shared },
      { name: EVENT.LOCK_RELEASE, attributes: { [ATTR.LOCK_ID]: 'config' } },
    ]);
    expect(events(endedSpan(tracing, 'w')).map((e) => [e.name, e.attributes[ATTR.LOCK_MODE]])).toEqual([
      [EVENT.LOCK_WAIT, 'exclusive'],
      [EVENT.LOCK_ACQUIRE, 'exclusive'],
      [EVENT.LOCK_RELEASE, undefined],
    ]);
    expect(events(endedSpan(tracing, 'w'))[0]!.attributes).toEqual(exclusive);
    expect(names(endedSpan(tracing, 'r3'))).toEqual([EVENT.LOCK_WAIT, EVENT.LOCK_ACQUIRE, EVENT.LOCK_RELEASE]);
  });

  it('upgrades a shared hold, recording a release and an exclusive acquire', async () => {
    const lock = new RWLock();
    await inSpan(tracer, 'upgrader', async () => {
      const hold = await lock.acquireShared();
      await hold.upgrade();
      expect(hold.mode).toBe('exclusive');
      hold.downgrade();
      expect(hold.mode).toBe('shared');
      hold.release();
    });
    expect(events(endedSpan(tracing, 'upgrader')).map((e) => [e.name, e.attributes[ATTR.LOCK_MODE]])).toEqual([
      [EVENT.LOCK_ACQUIRE, 'shared'],
      [EVENT.LOCK_RELEASE, undefined],
      [EVENT.LOCK_ACQUIRE, 'exclusive'],
      [EVENT.LOCK_RELEASE, undefined],
      [EVENT.LOCK_ACQUIRE, 'shared'],
      [EVENT.LOCK_RELEASE, undefined],
    ]);
    expect(lock.readers).toBe(0);
    expect(lock.writeLocked).toBe(false);
  });

  it('shows two upgrading readers deadlocked, and goes on when one gives up', async () => {
    const lock = new RWLock({ id: 'doc' });
    const bothIn = gate();
    const giveUp = new AbortController();
    const a = inSpan(tracer, 'a', async () => {
      const hold = await lock.acquireShared();
      await bothIn.opened;
      await hold.upgrade();
      hold.release();
      return 'a wrote';
    });
    const b = inSpan(tracer, 'b', async () => {
      const hold = await lock.acquireShared();
      await bothIn.opened;
      try {
        await hold.upgrade({ signal: giveUp.signal });
      } finally {
        hold.release();
      }
    });
    await sleep(5);
    bothIn.open();
    await sleep(20);
    expect(lock.readers).toBe(2); // stuck: each waits for the other to leave
    giveUp.abort(new Error('deadlock broken'));
    await expect(b).rejects.toThrow('deadlock broken');
    expect(await a).toBe('a wrote');
    expect(names(endedSpan(tracing, 'b'))).toEqual([EVENT.LOCK_ACQUIRE, EVENT.LOCK_WAIT, EVENT.LOCK_TIMEOUT, EVENT.LOCK_RELEASE]);
    expect(names(endedSpan(tracing, 'a'))).toEqual([
      EVENT.LOCK_ACQUIRE,
      EVENT.LOCK_WAIT,
      EVENT.LOCK_RELEASE,
      EVENT.LOCK_ACQUIRE,
      EVENT.LOCK_RELEASE,
    ]);
    expect(endedSpan(tracing, 'a').events[1]!.attributes![ATTR.LOCK_MODE]).toBe('exclusive');
  });
});

describe('Semaphore', () => {
  it('is a pool: checkout and checkin, and pool.wait only once every unit is out', async () => {
    const pool = new Semaphore(2, { name: 'workers' });
    const busy = gate();
    const runs = ['u1', 'u2', 'u3'].map((name) => inSpan(tracer, name, () => pool.use(() => busy.opened.then(() => name))));
    await sleep(5);
    expect(pool.available).toBe(0);
    expect(pool.pending).toBe(1);
    busy.open();
    expect(await Promise.all(runs)).toEqual(['u1', 'u2', 'u3']);
    const held = { [ATTR.POOL_NAME]: 'workers', [ATTR.POOL_SIZE]: 2 };
    expect(events(endedSpan(tracing, 'u1'))).toEqual([
      { name: EVENT.POOL_CHECKOUT, attributes: held },
      { name: EVENT.POOL_CHECKIN, attributes: { [ATTR.POOL_NAME]: 'workers' } },
    ]);
    expect(events(endedSpan(tracing, 'u3'))).toEqual([
      { name: EVENT.POOL_WAIT, attributes: held },
      { name: EVENT.POOL_CHECKOUT, attributes: held },
      { name: EVENT.POOL_CHECKIN, attributes: { [ATTR.POOL_NAME]: 'workers' } },
    ]);
    expect(pool.available).toBe(2);
    expect(() => new Semaphore(0)).toThrow(expect.objectContaining({ code: 'bad-config' }));
  });

  it('records pool.timeout for an abandoned wait', async () => {
    const pool = new Semaphore(1);
    const release = await pool.acquire();
    await expect(inSpan(tracer, 'late', () => pool.acquire({ signal: AbortSignal.timeout(20) }))).rejects.toMatchObject({
      name: 'TimeoutError',
    });
    release();
    expect(names(endedSpan(tracing, 'late'))).toEqual([EVENT.POOL_WAIT, EVENT.POOL_TIMEOUT]);
    expect(pool.available).toBe(1);
  });
});
