/**
 * Property-based tests: random wait and hold histories on small graphs, checked against the brute-force
 * reference (test/support/reference.ts). Each history becomes spans (one open span per task, with noise:
 * locks taken and released, waits that timed out, stale snapshots, duplicates, any order).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Detector } from '../../processor/src/engine/index.js';
import type { SpanRecord } from '../../processor/src/model/span.js';
import { referenceDeadlocked, type RefHold, type RefTask, type RefWait } from '../support/reference.js';
import { at, lock, pool, span, type Ev } from '../support/span-factory.js';

const LOCKS = ['A', 'B', 'C'];
const POOLS = ['P'];

const modeArb = fc.constantFrom<'exclusive' | 'shared'>('exclusive', 'shared');
const holdArb: fc.Arbitrary<RefHold> = fc.oneof(
  fc.record({ kind: fc.constant<'lock'>('lock'), res: fc.constantFrom(...LOCKS), mode: modeArb }),
  fc.record({ kind: fc.constant<'pool'>('pool'), res: fc.constantFrom(...POOLS), mode: fc.constant<'exclusive'>('exclusive') }),
);

function tasksArb(n: number): fc.Arbitrary<RefTask[]> {
  const ids = Array.from({ length: n }, (_, i) => `t${i}`);
  const waitArb: fc.Arbitrary<RefWait> = fc.oneof(
    fc.record({ kind: fc.constant<'lock'>('lock'), res: fc.constantFrom(...LOCKS), mode: modeArb }),
    fc.record({ kind: fc.constant<'pool'>('pool'), res: fc.constantFrom(...POOLS) }),
    fc.record({
      kind: fc.constant<'task'>('task'),
      on: fc.uniqueArray(fc.constantFrom(...ids), { minLength: 1, maxLength: 2 }),
      mode: fc.constantFrom<'all' | 'any'>('all', 'any'),
    }),
  );
  return fc.tuple(
    ...ids.map((id) =>
      fc.record({
        id: fc.constant(id),
        // A task holds each lock at most once (a second acquire of a held lock is a re-entry).
        holds: fc.uniqueArray(holdArb, { maxLength: 3, selector: (h) => (h.kind === 'lock' ? h.res : Math.random()) }),
        wait: fc.option(waitArb, { nil: undefined }),
      }),
    ),
  );
}

/** A pool never lends more units than it has: states where it would are not states a system can be in. */
function consistent(tasks: RefTask[], size: number): boolean {
  let units = 0;
  for (const t of tasks) for (const h of t.holds) if (h.kind === 'pool') units++;
  return units <= size;
}

/** The spans of a final state, with history noise that must change nothing. */
function toSpans(tasks: RefTask[], sizes: Record<string, number>, noise: boolean): SpanRecord[] {
  const out: SpanRecord[] = [];
  for (const t of tasks) {
    const events: Ev[] = [];
    let ms = 0;
    if (noise) {
      // Taken and released before: a released lock.
      events.push([ms++, 'lock.acquire', lock('Z')], [ms++, 'lock.release', lock('Z')]);
      // Waited and gave up.
      events.push([ms++, 'lock.wait', lock('A')], [ms++, 'lock.timeout', lock('A')]);
    }
    for (const h of t.holds) {
      events.push(h.kind === 'lock' ? [ms++, 'lock.acquire', lock(h.res, h.mode)] : [ms++, 'pool.checkout', pool(h.res, sizes[h.res])]);
    }
    events.push(...waitEvent(t, sizes, ms++));
    const full = span({ service: 'svc', name: t.id, trace: t.id, attrs: { 'task.id': t.id }, events });
    out.push(full);
    if (noise && events.length > 1) {
      // A stale earlier snapshot of the same span.
      out.push({ ...full, events: full.events.slice(0, events.length - 1) });
    }
  }
  return out;
}

/** The event of a task's wait, if it has one, at `ms`. */
function waitEvent(t: RefTask, sizes: Record<string, number>, ms: number): Ev[] {
  const w = t.wait;
  if (w?.kind === 'lock') return [[ms, 'lock.wait', lock(w.res, w.mode)]];
  if (w?.kind === 'pool') return [[ms, 'pool.wait', pool(w.res, sizes[w.res])]];
  if (w?.kind === 'task') return [[ms, 'task.wait', { 'task.wait.on': w.on, 'task.wait.mode': w.mode }]];
  return [];
}

/**
 * Two detectors fed `spans` one at a time, detecting after each, as a live processor takes them: one in
 * time order, one in an order `seed` shuffles.
 */
function fedOneByOne(spans: SpanRecord[], seed: number): Detector[] {
  const inTime = [...spans].sort((a, b) => a.startTimeUnixNano - b.startTimeUnixNano);
  const shuffled = fc.sample(fc.shuffledSubarray(spans, { minLength: spans.length }), { seed, numRuns: 1 })[0];
  return [inTime, shuffled].map((order) => {
    const d = new Detector({ maxVictims: 1000 });
    order.forEach((sp, i) => {
      d.addSpans([sp], at(1_000 + i));
      d.detect();
    });
    return d;
  });
}

function engineDeadlocked(spans: SpanRecord[]): { stuck: Set<string>; cores: string[][] } {
  const d = new Detector({ maxVictims: 1000 });
  d.addSpans(spans);
  d.detect();
  const cores = d
    .findings()
    .filter((f) => f.kind === 'deadlock' && f.state === 'active')
    .map((f) => f.tasks.map((t) => t.taskId));
  return { stuck: stuckIn(d), cores };
}

const sorted = (s: Set<string>) => [...s].sort();

/** The tasks of the detector's active deadlocks, cores and victims. */
function stuckIn(d: Detector): Set<string> {
  const stuck = new Set<string>();
  for (const f of d.findings()) {
    if (f.kind !== 'deadlock' || f.state !== 'active') continue;
    for (const t of f.tasks) stuck.add(t.taskId);
    for (const v of f.victims!.tasks) stuck.add(v.taskId);
  }
  return stuck;
}

/**
 * The same final state as a live processor sees it: each task took its holds in spans that have ended
 * (its thread still holds them), released a lock and gave up a wait in an earlier span, and waits in an
 * open span. One span per task is history that nothing rests on.
 */
function toLiveSpans(tasks: RefTask[], sizes: Record<string, number>): { spans: SpanRecord[]; history: number } {
  const out: SpanRecord[] = [];
  let history = 0;
  for (const t of tasks) {
    const attrs = { 'task.id': t.id };
    out.push(span({ service: 'svc', name: `${t.id}-before`, trace: t.id, attrs, start: 0, end: 5, events: [[1, 'lock.acquire', lock('Z')], [2, 'lock.release', lock('Z')], [3, 'lock.wait', lock('A')], [4, 'lock.timeout', lock('A')]] }));
    history++;
    t.holds.forEach((h, i) => {
      const ev: Ev = h.kind === 'lock' ? [10 + i, 'lock.acquire', lock(h.res, h.mode)] : [10 + i, 'pool.checkout', pool(h.res, sizes[h.res])];
      out.push(span({ service: 'svc', name: `${t.id}-take-${i}`, trace: t.id, attrs, start: 10 + i, end: 11 + i, events: [ev] }));
    });
    const events = waitEvent(t, sizes, 30);
    out.push(span({ service: 'svc', name: t.id, trace: t.id, attrs, start: 30, events }));
  }
  return { spans: out, history };
}

/**
 * The same final state again, with holds a task inherited: each waits in an open span of its own, and
 * takes each hold either in an earlier span of its own or in a child span with no task of its own (ended:
 * its holds pass to the task of the open span above it). A child span also took lock Z, which the task
 * released in a later span: Z is not held. `inherit[i]` says how the task's i-th hold is taken.
 */
function toInheritedSpans(tasks: RefTask[], sizes: Record<string, number>, inherit: boolean[]): { spans: SpanRecord[]; history: number } {
  const out: SpanRecord[] = [];
  let history = 0;
  for (const t of tasks) {
    const attrs = { 'task.id': t.id };
    const events = waitEvent(t, sizes, 30);
    const open = span({ service: 'svc', name: t.id, trace: t.id, attrs, start: 0, events });
    out.push(open);
    out.push(span({ service: 'svc', name: `${t.id}-z`, parent: open, start: 2, end: 3, events: [[2, 'lock.acquire', lock('Z')]] }));
    out.push(span({ service: 'svc', name: `${t.id}-free`, parent: open, attrs, start: 4, end: 6, events: [[5, 'lock.release', lock('Z')]] }));
    history += 2;
    t.holds.forEach((h, i) => {
      const ev: Ev = h.kind === 'lock' ? [10 + i, 'lock.acquire', lock(h.res, h.mode)] : [10 + i, 'pool.checkout', pool(h.res, sizes[h.res])];
      const name = `${t.id}-take-${i}`;
      out.push(
        inherit[i % inherit.length]
          ? span({ service: 'svc', name, parent: open, start: 10 + i, end: 11 + i, events: [ev] })
          : span({ service: 'svc', name, trace: t.id, attrs, start: 10 + i, end: 11 + i, events: [ev] }),
      );
    });
  }
  return { spans: out, history };
}

describe('the engine against a brute-force reference', () => {
  it('finds exactly the tasks that can never finish', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }).chain(tasksArb), fc.integer({ min: 1, max: 3 }), (tasks, size) => {
        fc.pre(consistent(tasks, size));
        const sizes = { P: size };
        const expected = referenceDeadlocked(tasks, sizes);
        const { stuck, cores } = engineDeadlocked(toSpans(tasks, sizes, false));
        expect(sorted(stuck)).toEqual(sorted(expected));
        // Each core is stuck by itself: non-empty, and all of it deadlocked.
        for (const c of cores) {
          expect(c.length).toBeGreaterThan(0);
          for (const id of c) expect(expected.has(id)).toBe(true);
        }
        // A deadlock has a core.
        if (expected.size > 0) expect(cores.length).toBeGreaterThan(0);
      }),
      { numRuns: 600, seed: 20261121 },
    );
  });

  it('gives the same answer with released locks, timed-out waits, stale snapshots, duplicates and any order', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }).chain(tasksArb), fc.integer({ min: 1, max: 3 }), fc.integer(), (tasks, size, seed) => {
        fc.pre(consistent(tasks, size));
        const sizes = { P: size };
        const clean = engineDeadlocked(toSpans(tasks, sizes, false));
        const noisy = toSpans(tasks, sizes, true);
        const shuffled = fc.sample(fc.shuffledSubarray([...noisy, ...noisy], { minLength: noisy.length * 2 }), { seed, numRuns: 1 })[0];
        expect(sorted(engineDeadlocked(shuffled).stuck)).toEqual(sorted(clean.stuck));
      }),
      { numRuns: 300, seed: 7 },
    );
  });

  it('gives the same answer fed one span at a time, detecting after each, in time order or any order', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }).chain(tasksArb), fc.integer({ min: 1, max: 3 }), fc.integer(), (tasks, size, seed) => {
        fc.pre(consistent(tasks, size));
        const sizes = { P: size };
        const expected = sorted(referenceDeadlocked(tasks, sizes));
        const { spans } = toLiveSpans(tasks, sizes);
        for (const d of fedOneByOne(spans, seed)) {
          expect(sorted(stuckIn(d))).toEqual(expected);
          expect(d.stats().openHolds).toBe(tasks.reduce((n, t) => n + t.holds.length, 0));
          expect(d.stats().openWaits).toBe(tasks.filter((t) => t.wait !== undefined).length);
        }
      }),
      { numRuns: 300, seed: 5 },
    );
  });

  it('gives the same answer with holds inherited from child spans, one span at a time in any order, and after forgetting', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }).chain(tasksArb),
        fc.integer({ min: 1, max: 3 }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 3 }),
        fc.integer(),
        (tasks, size, inherit, seed) => {
          fc.pre(consistent(tasks, size));
          const sizes = { P: size };
          const expected = sorted(referenceDeadlocked(tasks, sizes));
          const holds = tasks.reduce((n, t) => n + t.holds.length, 0);
          const waits = tasks.filter((t) => t.wait !== undefined).length;
          const { spans, history } = toInheritedSpans(tasks, sizes, inherit);
          for (const d of fedOneByOne(spans, seed)) {
            expect(sorted(stuckIn(d))).toEqual(expected);
            expect(d.stats()).toMatchObject({ openHolds: holds, openWaits: waits });
            // The child span that took Z and the span that released it go together; the rest stays.
            expect(d.forget(at(50_000))).toBe(history);
            d.detect();
            expect(sorted(stuckIn(d))).toEqual(expected);
            expect(d.stats()).toMatchObject({ openHolds: holds, openWaits: waits });
          }
        },
      ),
      { numRuns: 300, seed: 13 },
    );
  });

  it('gives the same answer after the live graph forgets what is older than its history', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }).chain(tasksArb), fc.integer({ min: 1, max: 3 }), (tasks, size) => {
        fc.pre(consistent(tasks, size));
        const sizes = { P: size };
        const expected = referenceDeadlocked(tasks, sizes);
        const { spans, history } = toLiveSpans(tasks, sizes);
        const d = new Detector({ maxVictims: 1000 });
        const observed = at(100_000);
        d.addSpans(spans, observed);
        d.detect();
        // Every ended span ended long before the cutoff; only those nothing rests on go.
        expect(d.forget(at(50_000))).toBe(history);
        d.detect();
        expect(sorted(stuckIn(d))).toEqual(sorted(expected));
        expect(d.stats().openHolds).toBe(tasks.reduce((n, t) => n + t.holds.length, 0));
        expect(d.stats().openWaits).toBe(tasks.filter((t) => t.wait !== undefined).length);
      }),
      { numRuns: 300, seed: 11 },
    );
  });
});

