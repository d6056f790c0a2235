/**
 * Incremental derivation against a full one. A live processor takes spans (and wait events that come as
 * log records) one at a time, and derives a
 * task's new events onto what it has: after everything it had (`append`), or, when some come earlier
 * (spans of a thread from several partitions, a parent exported after its children), from the earliest
 * of them on (`rewind`). Either way the task must end up exactly as a derivation of all its events at
 * once leaves it: the same waits, holds, issues, lock-order edges, releases and readies, with the same
 * ends, in the same indexes, and the same counts of open waits and holds. The detection tests see only
 * what this changes in findings; this one compares the state itself, so a difference that no small graph
 * turns into a finding yet is still caught.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Detector } from '../../processor/src/engine/index.js';
import type { HoldIv, TaskNode, WaitIv } from '../../processor/src/engine/model.js';
import type { GraphStore } from '../../processor/src/engine/store.js';
import type { Attributes, LogEventRecord, SpanRecord } from '../../processor/src/model/span.js';
import { at, lock, pool, span, type Ev } from '../support/span-factory.js';

const TASKS = ['t0', 't1', 't2'];

/** One event of the vocabulary, on a few resources, so that events of a task meet. */
const eventArb: fc.Arbitrary<[string, Attributes]> = fc.oneof(
  fc.tuple(fc.constantFrom('lock.wait', 'lock.acquire', 'lock.release', 'lock.timeout'), fc.constantFrom('A', 'B'), fc.constantFrom<'shared' | 'exclusive' | undefined>('shared', 'exclusive', undefined)).map(
    ([name, id, mode]) => [name, name === 'lock.release' || name === 'lock.timeout' ? lock(id) : lock(id, mode)] as [string, Attributes],
  ),
  fc.tuple(fc.constantFrom('pool.wait', 'pool.checkout', 'pool.checkin', 'pool.timeout'), fc.constantFrom('P', 'Q')).map(([name, id]) => [name, pool(id, 2)] as [string, Attributes]),
  fc.tuple(fc.constantFrom('cert.wait', 'cert.issue', 'cert.ready', 'cert.timeout'), fc.constantFrom('C', 'D')).map(([name, id]) => [name, { 'cert.id': id }] as [string, Attributes]),
  fc.tuple(fc.constantFrom('task.wait', 'task.resume', 'task.timeout'), fc.constantFrom(...TASKS)).map(
    ([name, on]) => [name, name === 'task.wait' ? { 'task.wait.on': [on], 'task.wait.mode': 'all' } : {}] as [string, Attributes],
  ),
  fc.constantFrom<[string, Attributes]>(['rpc.wait', {}], ['rpc.done', {}], ['rpc.timeout', {}]),
);

interface SpanSpec {
  task: string | undefined;
  start: number;
  length: number | undefined;
  events: [number, [string, Attributes]][];
  /** How many of its events (the last ones) come as log records instead. */
  logged: number;
}

/** Spans of three threads (and a few spans that are their own task), with events at times that often tie. */
const spansArb: fc.Arbitrary<SpanSpec[]> = fc.array(
  fc.record({
    task: fc.option(fc.constantFrom(...TASKS), { nil: undefined, freq: 6 }),
    start: fc.integer({ min: 0, max: 30 }),
    length: fc.option(fc.integer({ min: 0, max: 12 }), { nil: undefined, freq: 4 }),
    events: fc.array(fc.tuple(fc.integer({ min: 0, max: 14 }), eventArb), { maxLength: 6 }),
    logged: fc.oneof(fc.constant(0), fc.nat({ max: 3 })),
  }),
  { minLength: 1, maxLength: 14 },
);

/** What one detector takes at a time: a span, or a wait event that came as a log record. */
type Input = { span: SpanRecord } | { log: LogEventRecord };

function toInputs(specs: SpanSpec[]): Input[] {
  const out: Input[] = [];
  specs.forEach((s, i) => {
    const events: Ev[] = s.events.map(([dt, [name, attrs]]) => [s.start + dt, name, attrs]);
    events.sort((a, b) => a[0] - b[0]);
    // Log records of one span at the same time have no order but their arrival, which the two feeds
    // differ in: one of each time goes as a log record.
    const logged = events.splice(events.length - Math.min(s.logged, events.length)).filter((e, k, all) => all.findIndex((x) => x[0] === e[0]) === k);
    const record = span({
      service: 'svc',
      name: `s${i}`,
      trace: `trace-${i % 4}`,
      start: s.start,
      end: s.length === undefined ? undefined : s.start + s.length,
      attrs: s.task === undefined ? {} : { 'thread.id': s.task },
      events,
    });
    out.push({ span: record });
    for (const [ms, name, attrs] of logged) {
      const attributes = { ...attrs, ...(s.task === undefined ? {} : { 'thread.id': s.task }) };
      out.push({ log: { traceId: record.traceId, spanId: record.spanId, name, timeUnixNano: at(ms), attributes, resource: record.resource } });
    }
  });
  return out;
}

function feed(d: Detector, inputs: Input[], observedAt = 0): void {
  for (const x of inputs) {
    if ('span' in x) d.addSpans([x.span], observedAt);
    else d.addLogEvents([x.log], observedAt);
  }
}

const time = (t: number) => (t === Number.POSITIVE_INFINITY ? 'open' : String(t));
const waitText = (w: WaitIv) => `${w.task.taskId}:wait ${w.kind} ${w.res} ${w.mode} ${time(w.start)}..${time(w.end)} by ${w.endedBy ?? '-'} in ${w.span.name}`;
const holdText = (h: HoldIv) => `${h.origin.taskId}:hold ${h.kind} ${h.res} ${h.mode} ${time(h.start)}..${time(h.end)} in ${h.span.name}`;

/** Everything derived, as text: each task's intervals in list order, the indexes, the counts. */
function dump(d: Detector): string[] {
  const store = (d as unknown as { store: GraphStore }).store;
  const tasks = new Set<TaskNode>();
  for (const s of store.spans.values()) tasks.add(s.task);
  const out: string[] = [];
  const key = (t: TaskNode) => (t.spanTask ? `span ${t.spanAt(0).name}` : `task ${t.taskId}`);
  for (const t of [...tasks].sort((a, b) => (key(a) < key(b) ? -1 : 1))) {
    const lines = [`${key(t)}: open waits ${t.openWaitCount}, frontier ${t.frontier}`];
    let lastWait: WaitIv | undefined;
    let lastHold: HoldIv | undefined;
    let openHolds = 0;
    for (let w = t.waits; w !== undefined; w = w.next) lines.push(waitText((lastWait = w)));
    for (let h = t.holds; h !== undefined; h = h.next) {
      lines.push(holdText((lastHold = h)));
      if (h.end === Number.POSITIVE_INFINITY) openHolds++;
    }
    // What a thread keeps to derive new events without its history must be what its history says.
    const tails = t.tails;
    if (tails !== undefined) {
      expect(tails.wait).toBe(lastWait);
      expect(tails.hold).toBe(lastHold);
      expect(tails.openHolds).toBe(openHolds);
      // Every wait up to the mark, from the first, has ended by the mark's time; so has every hold.
      if (tails.waitMark !== undefined) {
        let w = t.waits;
        for (; w !== undefined; w = w.next) {
          expect(w.end).toBeLessThanOrEqual(tails.waitMarkAt);
          if (w === tails.waitMark) break;
        }
        expect(w).toBe(tails.waitMark); // the mark is in the list
      }
      if (tails.holdMark !== undefined) {
        let h = t.holds;
        for (; h !== undefined; h = h.next) {
          expect(h.end).toBeLessThanOrEqual(tails.holdMarkAt);
          if (h === tails.holdMark) break;
        }
        expect(h).toBe(tails.holdMark);
      }
    }
    for (const i of t.issues) lines.push(`issue ${i.cert} ${time(i.start)}..${time(i.end)}`);
    for (const o of t.orders) lines.push(`order ${o.first}(${o.firstMode}) -> ${o.then}(${o.thenMode}) gates ${o.gates.join(',')} at ${o.time} in ${o.span.name}`);
    for (const r of t.orphanReleases) lines.push(`orphan release ${r.lock} at ${r.time}`);
    for (const r of t.readies ?? []) lines.push(`ready ${r.cert} at ${r.time}`);
    out.push(lines.join('\n'));
  }
  const s = store as unknown as Record<string, { get(k: string): Iterable<object>; map: Map<string, unknown> }>;
  for (const name of ['liveLockHolds', 'livePoolHolds', 'endedLockHolds', 'endedPoolHolds', 'lockWaits', 'poolWaits', 'certWaits', 'taskWaits', 'certIssues', 'certReady', 'orderIndex']) {
    const entries: string[] = [];
    for (const k of s[name].map.keys()) {
      for (const item of s[name].get(k)) {
        const text =
          'endedBy' in item ? waitText(item as WaitIv) : 'origin' in item ? holdText(item as HoldIv) : JSON.stringify(item, (f, v) => (f === 'task' || f === 'span' || f === 'ev' ? undefined : v));
        entries.push(`${k}: ${text}`);
      }
    }
    out.push(`${name}: ${entries.sort().join(' | ')}`);
  }
  out.push(`open waits ${store.openWaits}, open holds ${store.openHolds}, tasks ${store.taskCount}`);
  return out;
}

describe('incremental derivation', () => {
  it('leaves every task as a derivation of all its events at once would, spans fed one at a time in any order', () => {
    fc.assert(
      fc.property(spansArb, fc.integer(), (specs, seed) => {
        const inputs = toInputs(specs);
        const whole = new Detector();
        feed(whole, inputs);
        whole.detect();
        const order = fc.sample(fc.shuffledSubarray(inputs, { minLength: inputs.length }), { seed, numRuns: 1 })[0];
        const oneByOne = new Detector();
        for (const x of order) {
          feed(oneByOne, [x]);
          oneByOne.detect();
        }
        expect(dump(oneByOne)).toEqual(dump(whole));
      }),
      { numRuns: 3000 },
    );
  });

  /** One detector fed `spans` one at a time, another all at once; their states must match. */
  const sameAsWhole = (spans: SpanRecord[]) => {
    const whole = new Detector();
    whole.addSpans(spans);
    whole.detect();
    const oneByOne = new Detector();
    for (const s of spans) {
      oneByOne.addSpans([s]);
      oneByOne.detect();
    }
    expect(dump(oneByOne)).toEqual(dump(whole));
    return dump(oneByOne);
  };
  const threadSpan = (name: string, start: number, events: Ev[]) => span({ service: 'svc', name, start, end: start + 10, attrs: { 'thread.id': 'T' }, events });

  it('takes back an upgrade when a late release shows that the second acquire took the lock anew', () => {
    const state = sameAsWhole([
      threadSpan('first', 0, [[1, 'lock.acquire', lock('A', 'shared')]]),
      threadSpan('again', 4, [[5, 'lock.acquire', lock('A', 'exclusive')]]),
      threadSpan('late', 2, [[3, 'lock.release', lock('A')]]), // between the two: the first hold ended
    ]);
    expect(state[0]).toContain('hold lock A shared');
    expect(state[0]).toContain('hold lock A exclusive');
  });

  it('orders a late event among old events at the same time, as a derivation of all of them does', () => {
    // Simultaneous events of two spans go by span start: the late span's release, at the same time as the
    // acquire, comes first, and releases nothing.
    const state = sameAsWhole([
      threadSpan('takes', 5, [[6, 'lock.acquire', lock('A')]]),
      threadSpan('gives', 1, [[6, 'lock.release', lock('A')]]),
    ]);
    expect(state[0]).toMatch(/hold lock A exclusive .*\.\.open/);
    expect(state[0]).toContain('orphan release A');
  });

  it('keeps a thread\'s tails true to its waits and holds as spans are forgotten and new ones come', () => {
    fc.assert(
      fc.property(spansArb, fc.integer(), fc.nat({ max: 40 }), (specs, seed, forgetAt) => {
        const inputs = toInputs(specs);
        const order = fc.sample(fc.shuffledSubarray(inputs, { minLength: inputs.length }), { seed, numRuns: 1 })[0];
        const d = new Detector();
        order.forEach((x, i) => {
          feed(d, [x], at(100 + i)); // seen live: ended spans can be forgotten
          d.detect();
          if (i === Math.floor(order.length / 2)) d.forget(at(forgetAt));
          dump(d); // checks each thread's tails against its lists
        });
      }),
      { numRuns: 1000 },
    );
  });

  it('moves a thread\'s hold tail back when the span of its last hold is forgotten', () => {
    const d = new Detector();
    d.addSpans([threadSpan('took', 0, [[1, 'lock.acquire', lock('L')], [2, 'lock.release', lock('L')]])], at(100));
    d.detect();
    d.addSpans([span({ service: 'svc', name: 'waits', start: 20, attrs: { 'thread.id': 'T' }, events: [[21, 'lock.wait', lock('M')]] })], at(101));
    d.detect(); // appended: the thread now keeps its tails, the hold of 'took' last
    expect(d.forget(at(15))).toBe(1);
    const state = dump(d); // checks the tails against the lists
    expect(state[0]).not.toContain('hold');
  });

  it('takes a wait event that came both as a log record and in its span once, whichever came first', () => {
    // A pool check-out: two of them would be two units.
    const s = span({ service: 'svc', name: 'takes', start: 0, attrs: { 'thread.id': 'T' }, events: [[1, 'pool.checkout', pool('P', 2)]] });
    const log: LogEventRecord = { traceId: s.traceId, spanId: s.spanId, name: 'pool.checkout', timeUnixNano: at(1), attributes: pool('P', 2), resource: s.resource };
    const spanFirst = new Detector();
    feed(spanFirst, [{ span: s }, { log }]);
    const logFirst = new Detector();
    feed(logFirst, [{ log }, { span: s }]);
    spanFirst.detect();
    logFirst.detect();
    expect(dump(logFirst)).toEqual(dump(spanFirst));
    expect([spanFirst.stats().openHolds, logFirst.stats().openHolds]).toEqual([1, 1]);
    // The log record's placeholder was a task of its own until its span named the thread.
    expect([spanFirst.stats().tasks, logFirst.stats().tasks]).toEqual([1, 1]);
  });

  it('derives from a time at which a marked hold ended, and moves the mark back when its span is forgotten', () => {
    // Thread T took and released L (1 ms - 5 ms), then a late event at 6 ms marks that hold as ended
    // before any later derivation.
    const took = threadSpan('took', 0, [[1, 'lock.acquire', lock('L')], [5, 'lock.release', lock('L')]]);
    const later = span({ service: 'svc', name: 'later', start: 20, attrs: { 'thread.id': 'T' }, events: [[21, 'lock.wait', lock('M')]] });
    const at6 = span({ service: 'svc', name: 'at6', start: 6, end: 7, attrs: { 'thread.id': 'T' }, events: [[6, 'lock.acquire', lock('N')], [6, 'lock.release', lock('N')]] });
    // Then one at 5 ms exactly, the time the marked hold ended: the release there is derived again.
    const at5 = span({ service: 'svc', name: 'at5', start: 5, end: 5, attrs: { 'thread.id': 'T' }, events: [[5, 'pool.checkout', pool('P', 2)], [5, 'pool.checkin', pool('P')]] });
    const all = [took, later, at6, at5];
    const state = sameAsWhole(all);
    expect(state[0]).not.toContain('orphan release');
    const d = new Detector();
    all.forEach((s, i) => {
      d.addSpans([s], at(100 + i));
      d.detect();
    });
    expect(d.forget(at(19))).toBe(3); // took, at6 and at5 go: the marked hold with them
    dump(d); // checks the marks against the lists
  });
});

