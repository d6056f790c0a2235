import { describe, expect, it } from 'vitest';
import { Detector } from '../../processor/src/engine/index.js';
import { SpanKind, type SpanRecord } from '../../processor/src/model/span.js';
import { at, lock, pool, span } from '../support/span-factory.js';

function run(spans: SpanRecord[]) {
  const d = new Detector();
  d.addSpans(spans);
  const changes = d.detect();
  return { d, changes, findings: d.findings() };
}

/** Two tasks in different services, each holding one lock and waiting for the other's. */
function abba(opts: { timeoutAt?: number } = {}): SpanRecord[] {
  const t1 = span({
    service: 'orders',
    name: 'pay',
    attrs: { 'task.id': 'req-1' },
    end: opts.timeoutAt !== undefined ? opts.timeoutAt + 10 : undefined,
    events: [
      [0, 'lock.acquire', lock('A')],
      [10, 'lock.wait', lock('B')],
      ...(opts.timeoutAt !== undefined ? ([[opts.timeoutAt, 'lock.timeout', lock('B')], [opts.timeoutAt + 1, 'lock.release', lock('A')]] as const) : []),
    ] as never,
  });
  const t2 = span({
    service: 'billing',
    name: 'invoice',
    attrs: { 'task.id': 'req-2' },
    end: opts.timeoutAt !== undefined ? opts.timeoutAt + 20 : undefined,
    events: [
      [1, 'lock.acquire', lock('B')],
      [12, 'lock.wait', lock('A')],
      ...(opts.timeoutAt !== undefined ? ([[opts.timeoutAt + 2, 'lock.acquire', lock('A')], [opts.timeoutAt + 3, 'lock.release', lock('A')], [opts.timeoutAt + 3, 'lock.release', lock('B')]] as const) : []),
    ] as never,
  });
  return [t1, t2];
}

describe('Detector', () => {
  it('reports an AB-BA cycle across two services once, with its chain and links', () => {
    const { changes, findings } = run(abba());
    expect(changes.map((c) => c.change)).toEqual(['opened']);
    expect(findings).toHaveLength(1);
    const f = findings[0];
    expect(f.kind).toBe('deadlock');
    expect(f.state).toBe('active');
    expect(f.resources).toEqual(['A', 'B']);
    expect(f.services).toEqual(['billing', 'orders']);
    expect(f.tasks.map((t) => t.taskId).sort()).toEqual(['req-1', 'req-2']);
    expect(f.chain).toHaveLength(2);
    expect(f.chain).toEqual([
      'Task billing:req-2 waits for exclusive lock "A"; blocked by orders:req-1.',
      'Task orders:req-1 waits for exclusive lock "B"; blocked by billing:req-2.',
    ]);
    expect(f.links.every((l) => l.url === `http://localhost:16686/trace/${l.traceId}?uiFind=${l.spanId}`)).toBe(true);
    expect(f.victims).toEqual({ count: 0, tasks: [] });
  });

  it('gives the same fingerprint whatever the order, and reports nothing twice', () => {
    const spans = abba();
    const a = run(spans).findings;
    const d = new Detector();
    d.addSpans([spans[1]]);
    expect(d.detect()).toEqual([]);
    d.addSpans([spans[0], spans[1], spans[0]]);
    const opened = d.detect();
    expect(opened).toHaveLength(1);
    expect(opened[0].finding.fingerprint).toBe(a[0].fingerprint);
    d.addSpans(spans);
    expect(d.detect()).toEqual([]);
  });

  it('does not report contention whose holder is running', () => {
    const holder = span({ service: 's', name: 'h', attrs: { 'task.id': 'h' }, events: [[0, 'lock.acquire', lock('L')]] });
    const waiters = [1, 2, 3].map((i) =>
      span({ service: 's', name: `w${i}`, attrs: { 'task.id': `w${i}` }, events: [[i, 'lock.wait', lock('L')]] }),
    );
    expect(run([holder, ...waiters]).findings).toEqual([]);
  });

  it('sees a self-deadlock on a non-reentrant lock, but not on a monitor', () => {
    const self = span({ service: 's', name: 't', attrs: { 'thread.id': 7 }, events: [[0, 'lock.acquire', lock('G')], [1, 'lock.wait', lock('G')]] });
    expect(run([self]).findings).toHaveLength(1);
    const mon = span({ service: 's', name: 't', attrs: { 'thread.id': 7 }, events: [[0, 'lock.acquire', lock('M', undefined, 'monitor')], [1, 'lock.wait', lock('M', undefined, 'monitor')]] });
    expect(run([mon]).findings).toEqual([]);
  });

  it('readers do not block readers; two upgrading readers deadlock', () => {
    const r = (id: string, up: boolean) =>
      span({ service: 's', name: id, attrs: { 'task.id': id }, events: [[0, 'lock.acquire', lock('K', 'shared')], ...(up ? [[5, 'lock.wait', lock('K', 'exclusive')] as [number, string, never]] : [[5, 'lock.wait', lock('K', 'shared')] as [number, string, never]])] });
    expect(run([r('a', false), r('b', false)]).findings).toEqual([]);
    expect(run([r('a', true), r('b', false)]).findings).toEqual([]);
    const f = run([r('a', true), r('b', true)]).findings;
    expect(f).toHaveLength(1);
    expect(f[0].tasks).toHaveLength(2);
  });

  it('finds an exhausted pool whose holders are all stuck, counting the victims queued behind', () => {
    const holders = Array.from({ length: 3 }, (_, i) =>
      span({ service: 'app', name: `h${i}`, attrs: { 'thread.id': `h${i}` }, events: [[i, 'pool.checkout', pool('db', 3)], [10 + i, 'lock.wait', lock('mon', undefined, 'monitor')]] }),
    );
    const owner = span({ service: 'app', name: 'owner', attrs: { 'thread.id': 'o' }, events: [[5, 'lock.acquire', lock('mon', undefined, 'monitor')], [20, 'pool.wait', pool('db', 3)]] });
    const queued = Array.from({ length: 4 }, (_, i) =>
      span({ service: 'app', name: `q${i}`, attrs: { 'thread.id': `q${i}` }, events: [[30 + i, 'pool.wait', pool('db', 3)]] }),
    );
    const f = run([...holders, owner, ...queued]).findings;
    expect(f).toHaveLength(1);
    expect(f[0].tasks).toHaveLength(4);
    expect(f[0].resources).toEqual(['db', 'mon']);
    expect(f[0].victims!.count).toBe(4);
    // With one holder that can still finish, nothing is stuck.
    const free = span({ service: 'app', name: 'h9', attrs: { 'thread.id': 'h9' }, events: [[3, 'pool.checkout', pool('db', 4)]] });
    expect(run([...holders, owner, free, ...queued]).findings).toEqual([]);
  });

  it('makes a parent wait for its children, across services, but not for detached ones', () => {
    const parent = span({ service: 'a', name: 'parent', events: [[0, 'lock.acquire', lock('L')]] });
    const child = (detached: boolean) =>
      span({ service: 'a', name: 'child', parent, attrs: detached ? { 'task.detached': true } : {}, start: 1, events: [[2, 'lock.wait', lock('L')]] });
    expect(run([parent, child(false)]).findings).toHaveLength(1);
    expect(run([parent, child(true)]).findings).toEqual([]);
  });

  it('makes an open parent wait for its open child whatever order their versions come in, detecting at every step', () => {
    const parentV1 = span({ service: 'a', name: 'parent', events: [[0, 'lock.acquire', lock('L')]] });
    // A newer snapshot of the parent: one more event.
    const parentV2 = span({ service: 'a', name: 'parent', events: [[0, 'lock.acquire', lock('L')], [3, 'lock.acquire', lock('M')]] });
    const child = span({ service: 'a', name: 'child', parent: parentV1, start: 1, events: [[2, 'lock.wait', lock('L')]] });
    const endedChild = { ...child, endTimeUnixNano: at(9), attributes: {} };
    // The parent first shown by one of its events as a log record (a placeholder span), after its child.
    const held = { traceId: parentV1.traceId, spanId: parentV1.spanId, name: 'lock.acquire', timeUnixNano: at(0), attributes: lock('L'), resource: parentV1.resource };
    const orders: (SpanRecord | typeof held)[][] = [
      [parentV1, child, parentV2],
      [parentV1, parentV2, child],
      [child, parentV1, parentV2],
      [child, parentV2, parentV1],
      [parentV2, child],
      [child, held, parentV1],
      [held, child, parentV1],
    ];
    for (const order of orders) {
      const d = new Detector();
      for (const s of order) {
        if ('kind' in s) d.addSpans([s]);
        else d.addLogEvents([s]);
        d.detect();
      }
      const active = () => d.findings().filter((f) => f.state === 'active');
      expect(active(), order.map((s) => ('kind' in s ? s.name + s.events.length : 'log')).join(' ')).toHaveLength(1);
      // The child ends: the parent waits for nothing now.
      d.addSpans([endedChild]);
      d.detect();
      expect(active()).toEqual([]);
    }
  });

  it('reports a deadlock that a timeout broke, with when it formed and how long it lasted', () => {
    const { findings } = run(abba({ timeoutAt: 5000 }));
    expect(findings).toHaveLength(1);
    const f = findings[0];
    expect(f.state).toBe('resolved');
    expect(f.brokenBy!.event).toBe('lock.timeout');
    expect(f.brokenBy!.task.taskId).toBe('req-1');
    expect(f.durationMs).toBe(4988);
    expect(f.fingerprint).toBe(run(abba()).findings[0].fingerprint);
  });

  it('turns an open deadlock into a resolved one when the timeout arrives later', () => {
    const d = new Detector();
    d.addSpans(abba());
    expect(d.detect().map((c) => c.change)).toEqual(['opened']);
    d.addSpans(abba({ timeoutAt: 5000 }));
    const changes = d.detect();
    expect(changes.map((c) => c.change)).toEqual(['resolved']);
    expect(d.findings().map((f) => f.state)).toEqual(['resolved']);
  });

  it('keeps the fingerprint of a deadlock that grows as late spans arrive, and announces it once', () => {
    const reader = (id: string) =>
      span({ service: 's', name: id, attrs: { 'task.id': id }, events: [[0, 'lock.acquire', lock('K', 'shared')], [5, 'lock.wait', lock('K', 'exclusive')]] });
    const d = new Detector();
    d.addSpans([reader('r1'), reader('r2')]);
    const opened = d.detect();
    expect(opened.map((c) => c.change)).toEqual(['opened']);
    // A third upgrading reader was in it all along; its span comes later.
    d.addSpans([reader('r3')]);
    expect(d.detect()).toEqual([]);
    const [f] = d.findings();
    expect(f.fingerprint).toBe(opened[0].finding.fingerprint);
    expect(f.formedAt).toBe(opened[0].finding.formedAt);
    expect(f.tasks.map((t) => t.taskId)).toEqual(['r1', 'r2', 'r3']);
  });

  it('names what broke a deadlock that a cancel ended (the span ended without a timeout event)', () => {
    const d = new Detector();
    d.addSpans(abba());
    expect(d.detect().map((c) => c.change)).toEqual(['opened']);
    const [t1] = abba();
    d.addSpans([{ ...t1, endTimeUnixNano: at(3000), attributes: { 'task.id': 'req-1' } }]);
    const changes = d.detect();
    expect(changes.map((c) => c.change)).toEqual(['resolved']);
    expect(changes[0].finding.brokenBy).toMatchObject({ event: 'span.end', task: { taskId: 'req-1' } });
    // It formed when the second of the two waits began, at 12 ms.
    expect(changes[0].finding.durationMs).toBe(2988);
  });

  it('resolves a deadlock held together by a span without wait events once that span ends', () => {
    // T holds L; its event-less span s2 has a child, in another task, that waits for L: T waits for its
    // child, the child for T.
    const s1 = span({ service: 'a', name: 's1', attrs: { 'task.id': 'T' }, events: [[0, 'lock.acquire', lock('L')]] });
    const s2 = (end?: number) => span({ service: 'a', name: 's2', attrs: { 'task.id': 'T' }, start: 1, end });
    const child = span({ service: 'a', name: 'child', parent: s2(), attrs: { 'task.id': 'C' }, start: 2, events: [[3, 'lock.wait', lock('L')]] });
    const d = new Detector();
    d.addSpans([s1, s2(), child]);
    expect(d.detect().map((c) => c.change)).toEqual(['opened']);
    d.addSpans([s2(50)]);
    expect(d.detect().map((c) => c.change)).toEqual(['resolved']);
  });

  it('survives a span that names itself as its parent', () => {
    const base = span({ service: 'a', name: 'loop', events: [[0, 'lock.acquire', lock('L')]] });
    const looped = { ...base, parentSpanId: base.spanId };
    const d = new Detector();
    d.addSpans([looped]);
    expect(d.detect()).toEqual([]);
    d.addSpans([{ ...looped, endTimeUnixNano: at(10) }]);
    expect(d.detect()).toEqual([]);
    expect(d.findings()).toEqual([]);
  });

  it('hands a hold over the same way whether a log event or the span it waits for comes first', () => {
    // A span-task's hold, left open when it ended, waits for its parent span; the parent first shows up
    // as the placeholder a log event makes, in another service instance (so nobody inherits the hold).
    const child = span({ service: 's2', name: 'c', trace: 'p', start: 7, end: 15, events: [[9, 'pool.checkout', pool('P', 1)]] });
    const parentId = '0000000000000005';
    const rec = { ...child, parentSpanId: parentId };
    const log = { traceId: child.traceId, spanId: parentId, name: 'lock.timeout', timeUnixNano: at(10), attributes: { 'lock.id': 'B' }, resource: { 'service.name': 's0' } };
    const stats = (first: 'span' | 'log') => {
      const d = new Detector();
      if (first === 'span') d.addSpans([rec]);
      else d.addLogEvents([log]);
      d.detect();
      if (first === 'span') d.addLogEvents([log]);
      else d.addSpans([rec]);
      d.detect();
      return d.stats();
    };
    expect(stats('log')).toEqual(stats('span'));
    expect(stats('span').openHolds).toBe(0);
  });

  it('ends a hold a thread inherited with its later release, whatever span arrives first', () => {
    // Thread 1's request has a child span (a task of its own) that takes L and ends holding it: thread 1
    // inherits L, and releases it in a later span; then it waits for N. Thread 2 holds N and waits for L,
    // which is free: nobody is stuck. Taking the release for nothing (it came before the child span, or
    // after) would make L look held, and the two threads a deadlock.
    const request = span({ service: 'a', name: 'request', start: 0, attrs: { 'thread.id': 1 }, events: [[8, 'lock.wait', lock('N')]] });
    const child = span({ service: 'a', name: 'child', parent: request, start: 1, end: 3, events: [[2, 'lock.acquire', lock('L')]] });
    const free = span({ service: 'a', name: 'free', parent: request, start: 4, end: 6, attrs: { 'thread.id': 1 }, events: [[5, 'lock.release', lock('L')]] });
    const other = span({ service: 'b', name: 'other', start: 0, attrs: { 'thread.id': 2 }, events: [[1, 'lock.acquire', lock('N')], [9, 'lock.wait', lock('L')]] });
    const spans = [request, child, free, other];
    const orders = spans.flatMap((a) => spans.filter((b) => b !== a).flatMap((b) => spans.filter((c) => c !== a && c !== b).map((c) => [a, b, c, spans.find((x) => x !== a && x !== b && x !== c)!])));
    expect(orders).toHaveLength(24);
    for (const order of orders) {
      const all = new Detector();
      all.addSpans(order);
      expect(all.detect()).toEqual([]);
      expect(all.stats()).toMatchObject({ openHolds: 1, openWaits: 2 });
      const oneByOne = new Detector();
      for (const s of order) {
        oneByOne.addSpans([s]);
        oneByOne.detect();
      }
      // Fed one span at a time, the threads look deadlocked while the release has not come: what is left
      // at the end is nothing open.
      expect(oneByOne.findings().filter((f) => f.state === 'active')).toEqual([]);
      expect(oneByOne.stats()).toMatchObject({ openHolds: 1, openWaits: 2 });
    }
  });

  it('reports a lock-order inversion that never overlapped', () => {
    const t1 = span({ service: 'a', name: 'one', attrs: { 'task.id': '1' }, end: 10, events: [[0, 'lock.acquire', lock('A')], [1, 'lock.acquire', lock('B')], [2, 'lock.release', lock('B')], [3, 'lock.release', lock('A')]] });
    const t2 = span({ service: 'b', name: 'two', attrs: { 'task.id': '2' }, start: 100, end: 110, events: [[100, 'lock.acquire', lock('B')], [101, 'lock.acquire', lock('A')], [102, 'lock.release', lock('A')], [103, 'lock.release', lock('B')]] });
    const f = run([t1, t2]).findings;
    expect(f).toHaveLength(1);
    expect(f[0].kind).toBe('potential-deadlock');
    expect(f[0].resources).toEqual(['A', 'B']);
    expect(f[0].orders).toHaveLength(2);
  });

  it('follows an RPC from the CLIENT span into the callee', () => {
    const root = span({ service: 'orders', name: 'POST /pay', kind: SpanKind.SERVER, events: [[0, 'lock.acquire', lock('row/1')]] });
    const call = span({ service: 'orders', name: 'POST billing', kind: SpanKind.CLIENT, parent: root, start: 1, events: [[1, 'rpc.wait', {}]] });
    const handler = span({ service: 'billing', name: 'POST /charge', kind: SpanKind.SERVER, parent: call, start: 2, events: [[3, 'lock.wait', lock('row/1')]] });
    const f = run([root, call, handler]).findings;
    expect(f).toHaveLength(1);
    expect(f[0].services).toEqual(['billing', 'orders']);
    // Once the reply came (the client span ended), it is over.
    const done = span({ service: 'orders', name: 'POST billing', kind: SpanKind.CLIENT, parent: root, start: 1, end: 50, events: [[1, 'rpc.wait', {}], [50, 'rpc.done', {}]] });
    expect(run([root, call, handler, done]).findings).toEqual([]);
  });
});
