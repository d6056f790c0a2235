/**
 * The detection pipeline without servers: a hand-driven clock, input decoded from the scenario fixtures,
 * and a sink that keeps what it is given. What was announced before a restart is an alert ledger built by
 * an earlier pipeline, as the processor rebuilds it from the alert topic or file.
 */
import { describe, expect, it, vi } from 'vitest';
import type { Alert } from '../../schemas/index.js';
import { decodeOtlpJson } from '../../processor/src/decode/index.js';
import { Detector } from '../../processor/src/engine/index.js';
import { ProcessorMetrics } from '../../processor/src/io/index.js';
import { AlertLedger } from '../../processor/src/run/ledger.js';
import { createLogger } from '../../processor/src/run/logger.js';
import { DetectionPipeline } from '../../processor/src/run/pipeline.js';
import { HTTP_LANE, ReplayOrder, type TimedBatch } from '../../processor/src/run/replay.js';
import type { AlertSink } from '../../processor/src/run/sinks.js';
import { schemaErrors, validateAlert } from '../support/schemas.js';
import { scenarioSpans, spanById, timedOut, tracesJson } from './otlp-fixtures.js';

const T0 = 1_800_000_000_000;

function memorySink(): AlertSink & { alerts: Alert[] } {
  const alerts: Alert[] = [];
  return { name: 'memory', alerts, start: async () => {}, publish: async (a) => void alerts.push(...a), shutdown: async () => {} };
}

function pipeline(ledger: AlertLedger, options: { kafka?: boolean; clock: { now: number } }) {
  const sink = memorySink();
  const p = new DetectionPipeline({
    detector: {},
    staleAfterMs: 10_000,
    sinks: [sink],
    ledger,
    metrics: new ProcessorMetrics({ processMetrics: false }),
    logger: createLogger({ write: () => {} }),
    source: { instance: 'test', version: '0.0.0' },
    kafka: options.kafka ?? false,
    startedAtMs: options.clock.now,
    now: () => options.clock.now,
  });
  return { p, sink };
}

const ab = scenarioSpans('01-cross-service-ab-ba.json', T0);
const batch = (spans = ab): TimedBatch['batch'] => decodeOtlpJson(tracesJson(spans));

describe('detection pipeline', () => {
  it('announces a deadlock once, however often its snapshots come, and its resolution once', async () => {
    const clock = { now: T0 };
    const { p, sink } = pipeline(new AlertLedger(), { clock });
    await p.tick();
    expect(p.ready).toBe(true);
    for (let i = 0; i < 3; i++) {
      clock.now += 500;
      await p.apply(HTTP_LANE, [{ batch: batch(), observedAtMs: clock.now }], clock.now - 3);
      await p.tick();
    }
    expect(sink.alerts.map((a) => a.change)).toEqual(['opened']);
    expect(sink.alerts[0]!.detectionLatencyMs).toBe(3);
    expect(validateAlert(sink.alerts[0]), schemaErrors(validateAlert)).toBe(true);

    const broken = ab.map((s) => (s.span.spanId === '5bdd92b962a561b6' ? timedOut(spanById(ab, '5bdd92b962a561b6'), T0 + 100) : s));
    await p.apply(HTTP_LANE, [{ batch: batch(broken), observedAtMs: clock.now }], clock.now);
    await p.apply(HTTP_LANE, [{ batch: batch(broken), observedAtMs: clock.now }], clock.now);
    await p.tick();
    expect(sink.alerts.map((a) => a.change)).toEqual(['opened', 'resolved']);
    expect(sink.alerts[1]!.finding.brokenBy?.event).toBe('lock.timeout');
  });

  it("times an alert from its input when the timer's pass finds it before the pass the input asked for", async () => {
    const clock = { now: T0 };
    const { p, sink } = pipeline(new AlertLedger(), { clock });
    await p.tick();
    clock.now += 500;
    // The tick is queued behind the batch, ahead of the detection pass the batch asks for (after this turn).
    const took = p.take('spans/0', [{ batch: batch(), observedAtMs: clock.now }], clock.now - 7, '10');
    const ticked = p.tick();
    await Promise.all([took, ticked]);
    expect(sink.alerts.map((a) => a.change)).toEqual(['opened']);
    expect(sink.alerts[0]!.detectionLatencyMs).toBe(7);
    await p.settled();
    expect(sink.alerts).toHaveLength(1);
  });

  it('takes the batches of one turn of the event loop in, detects once on all of them, and settles when the alert is out', async () => {
    const clock = { now: T0 };
    const { p, sink } = pipeline(new AlertLedger(), { clock });
    await p.tick();
    const detect = vi.spyOn(Detector.prototype, 'detect');
    try {
      // The deadlock's spans in two batches of two partitions, as one fetch brings them.
      const half = Math.ceil(ab.length / 2);
      await p.take('spans/0', [{ batch: batch(ab.slice(0, half)), observedAtMs: clock.now }], clock.now - 5, '10');
      await p.take('spans/1', [{ batch: batch(ab.slice(half)), observedAtMs: clock.now }], clock.now - 2, '20');
      expect(sink.alerts).toEqual([]);
      await p.settled();
      expect(detect).toHaveBeenCalledTimes(1);
      expect(sink.alerts.map((a) => a.change)).toEqual(['opened']);
      // Latency from the first batch of the pass: the pass may have waited for the later ones.
      expect(sink.alerts[0]!.detectionLatencyMs).toBe(5);
      await p.settled();
      expect(detect).toHaveBeenCalledTimes(1);
    } finally {
      detect.mockRestore();
    }
  });

  it('after a restart: silent for the deadlock still there, resolves the one gone, opens the one that formed meanwhile', async () => {
    // The first life: two deadlocks announced.
    const ring = scenarioSpans('09-session-lock-ring.json', T0);
    const clock = { now: T0 };
    const before = pipeline(new AlertLedger(), { clock });
    await before.p.tick();
    await before.p.apply(HTTP_LANE, [{ batch: batch(), observedAtMs: clock.now }, { batch: batch(ring), observedAtMs: clock.now }], clock.now);
    expect(before.sink.alerts.map((a) => a.change)).toEqual(['opened', 'opened']);
    const ledger = new AlertLedger();
    for (const a of before.sink.alerts) ledger.record(a);

    // The second life: the AB-BA emitters still send, the ring's are gone, and a third deadlock formed.
    const rw = scenarioSpans('03-rwlock-upgrade.json', T0);
    clock.now += 60_000;
    const after = pipeline(ledger, { clock });
    const feed = async () => {
      await after.p.apply(HTTP_LANE, [{ batch: batch(), observedAtMs: clock.now }, { batch: batch(rw), observedAtMs: clock.now }], clock.now);
      await after.p.tick();
    };
    await feed();
    // Warming up for one staleness time: every live emitter gets to send again before anything is said.
    expect(after.p.ready).toBe(false);
    expect(after.sink.alerts).toEqual([]);
    for (let i = 0; i < 11; i++) {
      clock.now += 1000;
      await feed();
    }
    expect(after.p.ready).toBe(true);
    const ringFp = before.sink.alerts.find((a) => a.finding.tasks.length === 8)!.fingerprint;
    expect(after.sink.alerts.map((a) => [a.change, a.finding.tasks.length])).toEqual(
      expect.arrayContaining([
        ['resolved', 8],
        ['opened', 2],
      ]),
    );
    expect(after.sink.alerts).toHaveLength(2);
    const gone = after.sink.alerts.find((a) => a.change === 'resolved')!;
    expect(gone.fingerprint).toBe(ringFp);
    expect(gone.finding.brokenBy?.event).toBe('span.stale');
    expect(gone.finding.formedAt).toBe(before.sink.alerts.find((a) => a.fingerprint === ringFp)!.finding.formedAt);
    for (const a of after.sink.alerts) expect(validateAlert(a), schemaErrors(validateAlert)).toBe(true);
    clock.now += 1000;
    await feed();
    expect(after.sink.alerts).toHaveLength(2);

    // The ring's emitters come back: the deadlock was only untrusted, not over, and is announced again.
    await after.p.apply(HTTP_LANE, [{ batch: batch(ring), observedAtMs: clock.now }], clock.now);
    expect(after.sink.alerts.map((a) => [a.change, a.fingerprint]).at(-1)).toEqual(['opened', ringFp]);
    await after.p.apply(HTTP_LANE, [{ batch: batch(ring), observedAtMs: clock.now }], clock.now);
    expect(after.sink.alerts).toHaveLength(3);
  });

  it('holds a Kafka replay until every partition caught up, and announces only what is still there', async () => {
    const clock = { now: T0 };
    const { p, sink } = pipeline(new AlertLedger(), { kafka: true, clock });
    p.assign([
      { topic: 'spans', partition: 0, startOffset: '10', endOffsetAtStart: '12' },
      { topic: 'spans', partition: 1, startOffset: '5', endOffsetAtStart: '5' },
    ]);
    // An old incident, resolved within the replayed window: formed and broken while nobody watched.
    const broken = ab.map((s) => (s.span.spanId === '6deaae88ff5252b7' ? timedOut(s, T0 + 50) : s));
    await p.apply('spans/0', [{ batch: batch(), observedAtMs: T0 - 60_000 }], clock.now, '10');
    await p.tick();
    expect(p.ready).toBe(false);
    await p.apply('spans/0', [{ batch: batch(broken), observedAtMs: T0 - 59_000 }], clock.now, '11');
    expect(p.ready).toBe(true);
    expect(sink.alerts.map((a) => [a.change, a.finding.brokenBy?.event, a.detectionLatencyMs])).toEqual([['resolved', 'lock.timeout', undefined]]);
  });
});

describe('staleness under a Kafka backlog', () => {
  it('judges staleness by the newest record applied while the consumer is behind, by the wall clock once caught up', async () => {
    const clock = { now: T0 };
    const { p, sink } = pipeline(new AlertLedger(), { kafka: true, clock });
    p.assign([{ topic: 'spans', partition: 0, startOffset: '0', endOffsetAtStart: '0' }]);
    await p.tick();
    expect(p.ready).toBe(true);
    // Records written at T0, read while 100 more wait behind them.
    await p.apply('spans/0', [{ batch: batch(), observedAtMs: T0 }], clock.now, '0', true);
    expect(sink.alerts.map((a) => a.change)).toEqual(['opened']);
    clock.now += 20_000;
    await p.tick();
    // Twice the staleness time later by the wall clock, but the backlog holds the snapshots: still trusted.
    expect(sink.alerts.map((a) => a.change)).toEqual(['opened']);
    // Caught up, and the last snapshot read is from T0 + 1 s: now it is stale.
    await p.apply('spans/0', [{ batch: batch(), observedAtMs: T0 + 1000 }], clock.now, '100', false);
    await p.tick();
    expect(sink.alerts.map((a) => [a.change, a.finding.brokenBy?.event])).toEqual([
      ['opened', undefined],
      ['resolved', 'span.stale'],
    ]);
  });
});

describe('replay order', () => {
  const item = (observedAtMs: number): TimedBatch => ({ batch: { spans: [], logEvents: [] }, observedAtMs });

  it('hands input on in timestamp order, only up to the slowest partition still catching up', () => {
    const r = new ReplayOrder(30_000, true);
    const a = item(1);
    r.push('t/0', [a], '0', 0);
    expect(r.drain()).toEqual([]); // the group is not joined yet: more partitions may come
    r.assign(
      [
        { topic: 't', partition: 0, startOffset: '0', endOffsetAtStart: '10' },
        { topic: 't', partition: 1, startOffset: '0', endOffsetAtStart: '10' },
      ],
      0,
    );
    const [b, c, d] = [item(5), item(2), item(3)];
    r.push('t/0', [b], '1', 0);
    r.push('t/1', [c], '0', 0);
    r.push(HTTP_LANE, [d], undefined, 0);
    expect(r.drain()).toEqual([a, c]); // partition 1 has only reached 2
    expect(r.caughtUp).toBe(false);
    r.push('t/1', [item(9)], '9', 0);
    r.push('t/0', [item(7)], '9', 0);
    expect(r.caughtUp).toBe(true);
    expect(r.drain().map((x) => x.observedAtMs)).toEqual([3, 5, 7, 9]);
    expect(r.behind()).toEqual([]);
  });

  it('takes a partition without progress for the stall time as caught up', () => {
    const r = new ReplayOrder(1000, true);
    r.assign([{ topic: 't', partition: 0, startOffset: '0', endOffsetAtStart: '3' }], 0);
    expect(r.markStalled(999)).toEqual([]);
    expect(r.markStalled(1000)).toEqual(['t/0']);
    expect(r.caughtUp).toBe(true);
  });
});
