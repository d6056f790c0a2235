/**
 * The live graph's history (Detector.forget): spans that ended before the history are forgotten, so a
 * processor that runs for days holds only the last few minutes; what still matters (a lock taken long ago
 * and still held, retry attempts under an open parent, lock orders) stays, and forgetting never makes up
 * a deadlock.
 */
import { describe, expect, it } from 'vitest';
import { Detector } from '../../processor/src/engine/index.js';
import type { GraphStore } from '../../processor/src/engine/store.js';
import { SpanKind, type SpanRecord } from '../../processor/src/model/span.js';
import { at, lock, span } from '../support/span-factory.js';

const MIN = 60_000;

/** One finished request of a worker thread: a parent span and a child that takes and frees a lock. */
function request(i: number, startMs: number, thread: number): SpanRecord[] {
  const root = span({ service: 'api', name: `req-${i}`, kind: SpanKind.SERVER, start: startMs, end: startMs + 5, attrs: { 'thread.id': thread } });
  const db = span({
    service: 'api',
    name: `db-${i}`,
    parent: root,
    start: startMs + 1,
    end: startMs + 4,
    attrs: { 'thread.id': thread },
    events: [
      [startMs + 1, 'lock.acquire', lock(`row-${i % 50}`)],
      [startMs + 3, 'lock.release', lock(`row-${i % 50}`)],
    ],
  });
  const plain = span({ service: 'api', name: `render-${i}`, parent: root, start: startMs + 4, end: startMs + 5 });
  return [db, plain, root];
}

describe('Detector.forget', () => {
  it('keeps a graph fed for an hour down to what the history holds, threads that come and go included', () => {
    const d = new Detector();
    const history = 5 * MIN;
    let forgotten = 0;
    let peak = 0;
    // One request every 100 ms for an hour, on thread ids that are never reused.
    for (let i = 0; i < 36_000; i++) {
      const now = i * 100;
      d.addSpans(request(i, now, i), at(now + 10));
      if (i % 600 === 599) {
        forgotten += d.forget(at(now - history));
        d.detect();
        peak = Math.max(peak, d.stats().spans);
      }
    }
    const stats = d.stats();
    // 5 minutes of requests is 3,000 requests of 3 spans; the rest went.
    expect(forgotten).toBeGreaterThan(36_000 * 3 - 3_000 * 3 - 600 * 3 - 1);
    expect(stats.spans).toBeLessThanOrEqual((3_000 + 600) * 3);
    expect(peak).toBeLessThanOrEqual((3_000 + 600) * 3);
    // Two tasks a request: its thread, and the render span (no task attributes: its own task).
    expect(stats.tasks).toBeLessThanOrEqual((3_000 + 600) * 2);
    expect(stats.openHolds).toBe(0);
    expect(d.findings()).toEqual([]);
  });

  it('lets go of the holds of a long-lived thread that are older than the history, not only of threads that end', () => {
    const d = new Detector();
    const history = 5 * MIN;
    // Thread 7 serves a request every 100 ms for an hour, each taking and freeing one of 50 rows.
    for (let i = 0; i < 36_000; i++) {
      const now = i * 100;
      d.addSpans(request(i, now, 7), at(now + 10));
      if (i % 600 === 599) {
        d.forget(at(now - history));
        d.detect();
      }
    }
    const store = (d as unknown as { store: GraphStore }).store;
    let holds = 0;
    for (let r = 0; r < 50; r++) holds += [...store.holdsAt('lock', `row-${r}`, at(0))].length;
    // The holds of the last 5 to 6 minutes: 3,000 to 3,600 requests.
    expect(holds).toBeGreaterThanOrEqual(3_000);
    expect(holds).toBeLessThanOrEqual(3_600);
    // The thread, and the render spans of those requests (their own tasks).
    expect(d.stats().tasks).toBeLessThanOrEqual(1 + 3_600);
    expect(d.stats().openHolds).toBe(0);
  });

  it('past --max-spans, forgets the oldest ended spans before the history is up, and says how far back it keeps', () => {
    const d = new Detector();
    for (let i = 0; i < 6_000; i++) {
      const now = i * 100;
      d.addSpans(request(i, now, i), at(now + 10));
      if (i % 100 === 99) {
        d.forget(at(now - 60 * MIN), 3_000);
        d.detect();
        expect(d.stats().spans).toBeLessThanOrEqual(3_000 + 300);
      }
    }
    // An hour of history was asked for; 3,000 spans are 1,000 requests, 100 s of them.
    const kept = (at(599_900) - d.historyStart) / 1e6;
    expect(kept).toBeGreaterThan(90_000);
    expect(kept).toBeLessThan(110_000);
    expect(d.stats().spans).toBeLessThanOrEqual(3_000);
  });

  it('still sees a deadlock over a lock taken long before the history, in a span long ended', () => {
    const d = new Detector();
    // Thread 1 takes L in a span that ends at once, and keeps it (a leader lock).
    const take = span({ service: 'a', name: 'take', start: 0, end: 2, attrs: { 'thread.id': 1 }, events: [[1, 'lock.acquire', lock('L')]] });
    d.addSpans([take], at(3));
    d.detect();
    expect(d.forget(at(60 * MIN))).toBe(0);
    // An hour later thread 1 waits for M, which thread 2 holds while it waits for L.
    const t = 60 * MIN + 100;
    const w1 = span({ service: 'a', name: 'w1', start: t, attrs: { 'thread.id': 1 }, events: [[t + 1, 'lock.wait', lock('M')]] });
    const w2 = span({ service: 'b', name: 'w2', start: t, attrs: { 'thread.id': 2 }, events: [[t, 'lock.acquire', lock('M')], [t + 2, 'lock.wait', lock('L')]] });
    d.addSpans([w1, w2], at(t + 3));
    const changes = d.detect();
    expect(changes.map((c) => c.change)).toEqual(['opened']);
    expect(changes[0].finding.resources).toEqual(['L', 'M']);
  });

  it('forgets a span whose event came after its end whole, so that no finding is left with a task of no span', () => {
    // A span-task that ended at 0 ms with a wait stamped 1 ms (an event after its span's end: a clock
    // skew, or an emitter's own timestamp), forgotten at 1 ms; its wait began at the cutoff, not before.
    const d = new Detector();
    const late = span({ service: 'a', name: 'late', start: 0, end: 0, events: [[1, 'cert.wait', { 'cert.id': 'D' }]] });
    const self = span({ service: 'a', name: 'self', start: 0, attrs: { 'thread.id': 't0' }, events: [[0, 'task.wait', { 'task.wait.on': ['t0'], 'task.wait.mode': 'all' }]] });
    d.addSpans([self], at(100));
    d.addSpans([late], at(101));
    d.detect();
    expect(d.forget(at(1))).toBe(1);
    // The issuer comes: the wait that went must not come back as part of a finding.
    d.addSpans([span({ service: 'a', name: 'issue', start: 0, attrs: { 'thread.id': 't0' }, events: [[0, 'cert.issue', { 'cert.id': 'D' }]] })], at(102));
    const changes = d.detect();
    for (const f of d.findings()) for (const t of f.tasks) expect(t.taskId).not.toBe(late.spanId);
    expect(changes.every((c) => c.finding.tasks.length > 0)).toBe(true);
    expect(d.stats()).toMatchObject({ spans: 2, openWaits: 1 });
  });

  it('forgets the span once the lock it took is released, and the release with it', () => {
    const d = new Detector();
    const take = span({ service: 'a', name: 'take', start: 0, end: 2, attrs: { 'thread.id': 1 }, events: [[1, 'lock.acquire', lock('L')]] });
    const free = span({ service: 'a', name: 'free', start: 10, end: 12, attrs: { 'thread.id': 1 }, events: [[11, 'lock.release', lock('L')]] });
    d.addSpans([take], at(3));
    d.addSpans([free], at(13));
    d.detect();
    expect(d.stats().openHolds).toBe(0);
    expect(d.forget(at(MIN))).toBe(2);
    expect(d.stats()).toMatchObject({ spans: 0, tasks: 0, openHolds: 0 });
  });

  it('looks at a span it kept again once the history has moved 10 s on, and forgets it when nothing rests on it any more', () => {
    const d = new Detector();
    const take = span({ service: 'a', name: 'take', start: 0, end: 2, attrs: { 'thread.id': 1 }, events: [[1, 'lock.acquire', lock('L')]] });
    d.addSpans([take], at(3));
    d.detect();
    expect(d.forget(at(MIN))).toBe(0); // L is still held: the span stays
    const free = span({ service: 'a', name: 'free', start: MIN + 1_000, end: MIN + 2_000, attrs: { 'thread.id': 1 }, events: [[MIN + 1_500, 'lock.release', lock('L')]] });
    d.addSpans([free], at(MIN + 2_001));
    d.detect();
    expect(d.stats().openHolds).toBe(0);
    // Both ended before the history now. The release stays while the span that took the lock does, and
    // both come up again together, within 10 s of when the later was kept.
    expect(d.forget(at(MIN + 5_000))).toBe(0);
    const passes: number[] = [];
    for (let t = MIN + 6_000; t <= MIN + 30_000; t += 500) passes.push(d.forget(at(t)));
    expect(passes.filter((n) => n > 0)).toEqual([2]);
    expect(passes.indexOf(2)).toBeLessThanOrEqual(18); // by MIN + 15 s
    expect(d.stats()).toMatchObject({ spans: 0, tasks: 0, openHolds: 0 });
  });

  it('forgets a release once the span that took the lock has gone, instead of keeping it for good', () => {
    const d = new Detector();
    // The lock is taken in one span of thread 1 and released in a later one that outlasts the release.
    const take = span({ service: 'a', name: 'take', start: 0, end: 2, attrs: { 'thread.id': 1 }, events: [[1, 'lock.acquire', lock('L')]] });
    const free = span({ service: 'a', name: 'free', start: 5, end: 30_000, attrs: { 'thread.id': 1 }, events: [[10, 'lock.release', lock('L')]] });
    d.addSpans([take, free], at(30_001));
    d.detect();
    // The hold ended before the history, the span with the release did not: the span that took it goes.
    expect(d.forget(at(20_000))).toBe(1);
    let forgotten = 0;
    for (let t = 21_000; t <= 2 * MIN; t += 1_000) forgotten += d.forget(at(t));
    expect(forgotten).toBe(1);
    expect(d.stats()).toMatchObject({ spans: 0, tasks: 0, openHolds: 0 });
  });

  it('keeps the release of a lock its task inherited while the span that took the lock stays', () => {
    const d = new Detector();
    // Thread 1 runs a long request; a child span (a task of its own) takes L and M and ends holding both,
    // so thread 1 inherits them. Thread 1 releases L in a later span; M it keeps, so the child's span stays.
    const request = span({ service: 'a', name: 'request', start: 0, attrs: { 'thread.id': 1 } });
    const child = span({
      service: 'a',
      name: 'child',
      parent: request,
      start: 1,
      end: 3,
      events: [
        [2, 'lock.acquire', lock('L')],
        [2, 'lock.acquire', lock('M')],
      ],
    });
    const free = span({ service: 'a', name: 'free', parent: request, start: 4, end: 6, attrs: { 'thread.id': 1 }, events: [[5, 'lock.release', lock('L')]] });
    d.addSpans([request, child, free], at(7));
    d.detect();
    expect(d.stats().openHolds).toBe(1); // M
    // Both ended spans are before the history: the child's stays for M, and the release of L with it.
    expect(d.forget(at(MIN))).toBe(0);
    d.detect();
    expect(d.stats()).toMatchObject({ spans: 3, openHolds: 1 });
  });

  it('keeps a span long ended whose release ended a hold taken in a span still open, so the lock is not taken to be held again', () => {
    const d = new Detector();
    // Thread 1's request span, open for an hour, took L itself; a child span released it and ended.
    const req = span({ service: 'a', name: 'stream', start: 0, attrs: { 'thread.id': 1 }, events: [[1, 'lock.acquire', lock('L')]] });
    const free = span({ service: 'a', name: 'flush', parent: req, start: 5, end: 7, attrs: { 'thread.id': 1 }, events: [[6, 'lock.release', lock('L')]] });
    d.addSpans([req, free], at(8));
    d.detect();
    for (let m = 1; m <= 60; m++) {
      d.addSpans([req], at(m * MIN)); // the open span keeps being snapshotted
      d.expire(at(m * MIN), 10_000 * 1e6);
      d.forget(at(m * MIN - 5 * MIN));
    }
    expect(d.stats()).toMatchObject({ spans: 2, openHolds: 0 });
    // An hour on, task 2 holds M and waits for L (free), and thread 1 waits for M: no deadlock.
    const t = 60 * MIN + 100;
    const t2 = span({ service: 'b', name: 't2', start: t, attrs: { 'task.id': 't2' }, events: [[t, 'lock.acquire', lock('M')], [t + 1, 'lock.wait', lock('L')]] });
    const w1 = span({ service: 'a', name: 'w1', parent: req, start: t, attrs: { 'thread.id': 1 }, events: [[t + 2, 'lock.wait', lock('M')]] });
    d.addSpans([req, t2, w1], at(t + 3));
    expect(d.detect()).toEqual([]);
  });

  it('keeps a retry attempt that ended while its parent is open, so the parent is not taken to wait for an older one', () => {
    // The caller holds P and waits on its call; the first attempt's server is still stuck waiting for P,
    // but the caller has moved on to a second attempt, which finished: no deadlock, now or after forgetting.
    const d = new Detector();
    const call = span({ service: 'caller', name: 'call', kind: SpanKind.CLIENT, start: 0, attrs: { 'task.id': 'c' }, events: [[0, 'lock.acquire', lock('P')], [1, 'rpc.wait']] });
    const attempt1 = span({ service: 'callee', name: 'POST /x', trace: 'x', parent: call, kind: SpanKind.SERVER, start: 2, attrs: { 'task.id': 's1', 'http.request.resend_count': 0 }, events: [[3, 'lock.wait', lock('P')]] });
    const attempt2 = { ...span({ service: 'callee', name: 'POST /x', trace: 'y', parent: call, kind: SpanKind.SERVER, start: 5, end: 6, attrs: { 'task.id': 's2', 'http.request.resend_count': 1 } }), spanId: 'aaaaaaaaaaaaaaa2' };
    d.addSpans([call, attempt1, attempt2], at(7));
    expect(d.detect()).toEqual([]);
    for (let m = 1; m <= 30; m++) {
      // The open spans keep being snapshotted; time passes well beyond the history.
      d.addSpans([call, attempt1], at(m * MIN));
      d.expire(at(m * MIN), 10_000 * 1e6);
      d.forget(at(m * MIN - 5 * MIN));
      expect(d.detect()).toEqual([]);
    }
    expect(d.findings()).toEqual([]);
  });

  it('finds a lock-order inversion whose two halves are further apart than the history', () => {
    const d = new Detector();
    const ab = span({ service: 'a', name: 'ab', start: 0, end: 5, attrs: { 'task.id': 'x' }, events: [[1, 'lock.acquire', lock('A')], [2, 'lock.acquire', lock('B')], [3, 'lock.release', lock('B')], [4, 'lock.release', lock('A')]] });
    d.addSpans([ab], at(6));
    expect(d.detect()).toEqual([]);
    expect(d.forget(at(10 * MIN))).toBe(1);
    const t = 60 * MIN;
    const ba = span({ service: 'b', name: 'ba', start: t, end: t + 5, attrs: { 'task.id': 'y' }, events: [[t + 1, 'lock.acquire', lock('B')], [t + 2, 'lock.acquire', lock('A')], [t + 3, 'lock.release', lock('A')], [t + 4, 'lock.release', lock('B')]] });
    d.addSpans([ba], at(t + 6));
    const changes = d.detect();
    expect(changes.map((c) => c.change)).toEqual(['potential']);
    expect(changes[0].finding.resources).toEqual(['A', 'B']);
    expect(changes[0].finding.services).toEqual(['a', 'b']);
  });

  it('forgets spans known only from log records once they have gone stale', () => {
    const d = new Detector();
    const base = { traceId: 'f'.repeat(32), resource: { 'service.name': 'logs-only' } };
    d.addLogEvents(
      [1, 2, 3].map((i) => ({ ...base, spanId: `${i}`.repeat(16), name: 'lock.acquire', timeUnixNano: at(i), attributes: { 'lock.id': `L${i}`, 'task.id': `t${i}` } })),
      at(10),
    );
    d.detect();
    expect(d.stats().spans).toBe(3);
    expect(d.expire(at(20_000), 10_000 * 1e6)).toBe(3);
    expect(d.forget(at(10 * MIN))).toBe(3);
    expect(d.stats()).toMatchObject({ spans: 0, tasks: 0, openHolds: 0 });
  });

  it('forgets nothing of spans added without an observation time (analyze keeps everything)', () => {
    const d = new Detector();
    d.addSpans(request(1, 0, 1));
    d.detect();
    expect(d.forget(at(600 * MIN))).toBe(0);
    expect(d.stats().spans).toBe(3);
  });
});
