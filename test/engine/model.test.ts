/**
 * SpanNode keeps an ended span's length rather than its end (a small integer, not a heap number, for
 * most spans), and a hold its length where it can. The end must come back exactly as given, whatever the
 * times, or the views would move.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EventKind, WaitEvent } from '../../processor/src/engine/events.js';
import { HoldIv, Instance, OPEN, SpanNode, TaskNode } from '../../processor/src/engine/model.js';

const task = new TaskNode(new Instance('svc', 'svc', undefined, new Map()), 't', false);
const span = (start: number, end: number, attempt = -1, events = 0) =>
  new SpanNode('t1', '0000000000000001', undefined, 'op', start, end, task, events, 0, 0, attempt, true, false);

describe('SpanNode times', () => {
  it('gives back the end exactly: short and long spans, open ones, and ends that a length would round', () => {
    const now = 1_763_700_000_123_456_789; // unix ns: past 2^53, where doubles step by 256 ns
    const cases: [number, number][] = [
      [now, now + 1_500_000], // 1.5 ms
      [now, now + 3_600e9], // an hour: a length past the small integers
      [now, now], // zero length
      [now, now - 512], // an end before its start (bad input)
      [now, 1], // an end far before its start: the length would round
      [0, now], // no start
      [1.5, 2.25], // fractions (JSON input)
      [Number.MAX_SAFE_INTEGER, 0.1],
    ];
    for (const [start, end] of cases) {
      const s = span(start, end, 3, 7);
      expect(s.end).toBe(end);
      expect(s.start).toBe(start);
      expect([s.attempt, s.eventCount, s.detached, s.placeholder, s.stale]).toEqual([3, 7, true, false, false]);
    }
    expect(span(now, OPEN).end).toBe(OPEN);
  });

  it('gives back the latest event time exactly, wherever it lies from the start, and when the start moves', () => {
    const now = 1_763_700_000_123_456_789;
    const times = fc.oneof(
      fc.constantFrom(now, now + 256, now + 1_073_741_568, now + 1_073_741_824, now - 256, 1, 2 ** 30 - 1, 2 ** 30, 2 ** 31, 1.5, Number.MAX_SAFE_INTEGER, 2 ** 60),
      fc.integer({ min: 1, max: 2 ** 31 }),
      fc.double({ min: 1, max: 2e18, noNaN: true }),
    );
    fc.assert(
      fc.property(times, times, times, (start, last, moved) => {
        const s = new SpanNode('t1', '0000000000000001', undefined, 'op', start, OPEN, task, 1, last, 0, -1, false, true);
        expect(s.lastEventTime).toBe(last);
        expect(s.start).toBe(start);
        s.start = moved; // a placeholder's start moves to an earlier log record
        expect(s.lastEventTime).toBe(last);
        expect(s.start).toBe(moved);
      }),
      { numRuns: 2_000 },
    );
    expect(span(now, now + 10).lastEventTime).toBe(0); // no events
  });

  it('keeps the attempt and the event count apart from the flags, up to their limits', () => {
    const s = span(1, 2, 126, 2 ** 16 - 1);
    expect(s.openChildSeen).toBe(false);
    s.stale = true;
    s.retiring = true;
    s.logged = true;
    s.noteOpenChild();
    expect([s.attempt, s.eventCount, s.stale, s.retiring, s.logged, s.openChildSeen, s.end]).toEqual([126, 2 ** 16 - 1, true, true, true, true, 2]);
    s.stale = false;
    expect([s.attempt, s.eventCount, s.stale, s.retiring, s.logged, s.openChildSeen]).toEqual([126, 2 ** 16 - 1, false, true, true, true]);
    expect(span(1, 2, 10_000, 10 ** 9).eventCount).toBe(2 ** 16 - 1); // capped, not wrapped
    expect(span(1, 2, 10_000).attempt).toBe(126);
  });
});

describe('TaskNode span lists', () => {
  /** A span of the task, open or ended, with or without an event (the event list is all the list reads). */
  const spanOf = (t: TaskNode, i: number, open: boolean, withEvents: boolean) => {
    const s = new SpanNode('t1', i.toString(16).padStart(16, '0'), undefined, 'op', i, open ? OPEN : i + 1, t, 0, 0, 0, -1, false, false);
    if (withEvents) s.events = {} as SpanNode['events'];
    return s;
  };
  const list = (l: readonly SpanNode[] | SpanNode | undefined) => (l === undefined ? [] : l instanceof SpanNode ? [l] : [...l]);
  const byId = (a: SpanNode, b: SpanNode) => (a.spanId < b.spanId ? -1 : 1);

  it('keeps its open spans and its spans with events as the spans attached and detached say', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({ op: fc.constantFrom('attach', 'detach', 'detachAll', 'event'), open: fc.boolean(), events: fc.boolean(), pick: fc.nat(), count: fc.nat({ max: 4 }) }),
          { maxLength: 120 },
        ),
        (ops) => {
          const t = new TaskNode(new Instance('svc', 'svc', undefined, new Map()), 'T', false);
          const attached: SpanNode[] = [];
          let n = 0;
          for (const o of ops) {
            if (o.op === 'attach' || attached.length === 0) {
              const s = spanOf(t, n++, o.open, o.events);
              t.attachNew(s);
              attached.push(s);
            } else if (o.op === 'detach') {
              t.detach(attached.splice(o.pick % attached.length, 1)[0]);
            } else if (o.op === 'detachAll') {
              // Mostly the oldest, as forget takes them, but not only: of the first few, those `pick` says.
              const gone = attached.slice(0, o.count + 2).filter((_, k) => (o.pick >> k) & 1);
              for (const g of gone) attached.splice(attached.indexOf(g), 1);
              t.detachAll(new Set(gone), gone.length);
            } else {
              // A log record's event on a span attached before (without one, perhaps).
              const s = attached[o.pick % attached.length];
              s.events ??= {} as SpanNode['events'];
              t.attach(s);
            }
            expect(t.spanCount).toBe(attached.length);
            expect(Array.from({ length: t.spanCount }, (_, k) => t.spanAt(k))).toEqual(attached); // in the order attached
            expect(list(t.openSpansOf()).sort(byId)).toEqual(attached.filter((s) => s.end === OPEN).sort(byId));
            expect(list(t.eventSpans()).sort(byId)).toEqual(attached.filter((s) => s.events !== undefined).sort(byId));
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('HoldIv end', () => {
  const acquire = new EventKind('lock.acquire', 'lock.id', { 'lock.id': 'L' }, false);
  const hold = (start: number) => new HoldIv(new WaitEvent(acquire, start, 'L', span(start, OPEN)), undefined);

  it('gives back the end exactly, wherever it lies from the start, and again when it changes', () => {
    const now = 1_763_700_000_123_456_789;
    const times = fc.oneof(
      fc.constantFrom(now, now + 256, now + 1_073_741_568, now + 1_073_741_824, now - 256, 0, 1, 2 ** 30 - 1, 2 ** 30, 2 ** 31, 1.5, -3, Number.MAX_SAFE_INTEGER, 2 ** 60),
      fc.integer({ min: -(2 ** 31), max: 2 ** 31 }),
      fc.double({ min: -1e3, max: 2e18, noNaN: true }),
    );
    fc.assert(
      fc.property(times, times, times, (start, end, later) => {
        const h = hold(start);
        expect(h.end).toBe(OPEN);
        h.end = end;
        expect(h.end).toBe(end);
        h.end = later;
        expect(h.end).toBe(later);
        h.end = OPEN; // reopened (a release that turned out to be another's)
        expect(h.end).toBe(OPEN);
      }),
      { numRuns: 2_000 },
    );
  });
});
