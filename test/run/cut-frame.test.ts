/**
 * Cut frames: what the Kafka thread writes is what the event loop reads back, after the clone `postMessage`
 * makes: the same records, in the same order, in the same shapes (key order, `parentSpanId` present when
 * undefined), `NO_ATTRS` where it was, one resource object where the spans shared one.
 */
import fc from 'fast-check';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { makeEvent, makeLogEvent, makeSpan } from '../../processor/src/decode/records.js';
import type { AttrValue, Attributes, LogEventRecord, SpanKind, SpanRecord } from '../../processor/src/model/span.js';
import { CutFrameWriter, frameTransfer, readCutFrame, WaitInputCutter, type KeptInput, type OtlpPayload, type WaitInput } from '../../processor/src/run/index.js';
import { NO_ATTRS } from '../../processor/src/scale/wait-records.js';
import { buildWorkload } from '../../processor/bench/otlp-workload.js';

/** Inputs through one frame and back, as `postMessage` would carry it (its arrays moved, not copied). */
function roundTrip(inputs: (WaitInput | KeptInput)[], writer = new CutFrameWriter()): WaitInput[] {
  for (const x of inputs) writer.add(x);
  expect(writer.size).toBe(inputs.length);
  const frame = writer.take();
  expect(writer.size).toBe(0);
  const transfer = frameTransfer(frame);
  expect(transfer.length).toBe(2 + 3 * inputs.filter((x) => 'kept' in x).length);
  const moved = structuredClone(frame, { transfer });
  // Moved: the writer's side no longer holds them.
  for (const b of transfer) expect(b.byteLength).toBe(0);
  return readCutFrame(moved);
}

/** The run path's inputs of a realistic workload and of every recorded incident, cut by `cut` (a new cutter's). */
function realisticInputs<T>(cut: (payload: OtlpPayload) => T): T[] {
  const work = buildWorkload({ spans: 3_000, batchSize: 500, seed: 3, services: 1, partialsEndAfter: 1 });
  const inputs = work.batches.map((bytes, i) => cut({ signal: 'traces', encoding: 'proto', bytes, name: `spans/0@${i}` }));
  const scenarios = new URL('../fixtures/scenarios/', import.meta.url);
  for (const f of readdirSync(scenarios).filter((n) => n.endsWith('.json'))) {
    inputs.push(cut({ signal: 'traces', encoding: 'json', bytes: readFileSync(new URL(f, scenarios)), name: f }));
  }
  return inputs;
}

/** The records with every shape made visible: key order, own properties holding undefined, shared objects. */
function shapeOf(inputs: WaitInput[]): unknown {
  const seen = new Map<object, number>();
  const ref = (o: object) => (o === NO_ATTRS ? 'NO_ATTRS' : `#${seen.get(o) ?? (seen.set(o, seen.size), seen.size - 1)}`);
  const rec = (r: object): unknown => Object.entries(r).map(([k, v]) => [k, v === undefined ? '<undefined>' : v]);
  return inputs.map((x) => ({
    spans: x.spans,
    waitEvents: x.waitEvents,
    records: x.batch.spans.map((s) => ({
      keys: rec(s),
      attributes: ref(s.attributes),
      resource: ref(s.resource),
      events: s.events.map((e) => ({ keys: rec(e), attributes: ref(e.attributes) })),
    })),
    logs: x.batch.logEvents.map((e) => ({ keys: rec(e), attributes: ref(e.attributes), resource: ref(e.resource) })),
  }));
}

const hex = (n: number) => fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: n, maxLength: n });
const text = fc.string({ unit: 'binary', maxLength: 12 });
const scalar: fc.Arbitrary<AttrValue> = fc.oneof(text, fc.double(), fc.integer(), fc.boolean(), fc.constant(null));
const value: fc.Arbitrary<AttrValue> = fc.oneof(scalar, fc.array(fc.oneof(scalar, fc.array(scalar, { maxLength: 2 })), { maxLength: 3 }));
// Keys in any order, `__proto__` among them; or the shared NO_ATTRS.
const attrs: fc.Arbitrary<Attributes> = fc.oneof(
  fc.constant(NO_ATTRS),
  fc.array(fc.tuple(fc.oneof(text, fc.constant('__proto__'), fc.constant('task.id')), value), { maxLength: 4 }).map((kvs) => {
    const a: Attributes = {};
    for (const [k, v] of kvs) Object.defineProperty(a, k, { value: v, enumerable: true, writable: true, configurable: true });
    return a;
  }),
);

const input: fc.Arbitrary<WaitInput> = fc
  .record({
    resources: fc.array(attrs, { minLength: 1, maxLength: 3 }),
    spans: fc.array(
      fc.record({
        traceId: hex(32),
        spanId: hex(16),
        parent: fc.option(hex(16), { nil: undefined }),
        name: text,
        kind: fc.integer({ min: 0, max: 5 }),
        start: fc.double({ min: 0, noNaN: true }),
        end: fc.oneof(fc.constant(0), fc.double({ min: 0, noNaN: true })),
        attributes: attrs,
        resource: fc.nat(),
        events: fc.array(fc.record({ name: text, time: fc.double(), attributes: attrs }), { maxLength: 3 }),
      }),
      { maxLength: 6 },
    ),
    logs: fc.array(fc.record({ traceId: hex(32), spanId: hex(16), name: text, time: fc.double(), attributes: attrs, resource: fc.nat() }), { maxLength: 3 }),
    spansIn: fc.nat(),
    waitEvents: fc.nat(),
  })
  .map(({ resources, spans, logs, spansIn, waitEvents }) => {
    const res = (i: number) => resources[i % resources.length]!;
    const records: SpanRecord[] = spans.map((s) =>
      makeSpan(s.traceId, s.spanId, s.parent, s.name, s.kind as SpanKind, s.start, s.end, s.attributes, res(s.resource), s.events.map((e) => makeEvent(e.name, e.time, e.attributes))),
    );
    const logEvents: LogEventRecord[] = logs.map((e) => makeLogEvent(e.traceId, e.spanId, e.name, e.time, e.attributes, res(e.resource)));
    return { batch: { spans: records, logEvents }, spans: spansIn, waitEvents };
  });

describe('cut frames', () => {
  it('read back what was written: the same records, shapes, shared objects and counts (property)', () => {
    const writer = new CutFrameWriter();
    fc.assert(
      fc.property(fc.array(input, { maxLength: 4 }), (inputs) => {
        const back = roundTrip(inputs, writer);
        expect(back).toEqual(inputs);
        expect(shapeOf(back)).toEqual(shapeOf(inputs));
        // -0 and NaN stay what they were (toEqual tells them apart with Object.is).
        expect(back.flatMap((x) => x.batch.spans.map((s) => s.startTimeUnixNano))).toEqual(inputs.flatMap((x) => x.batch.spans.map((s) => s.startTimeUnixNano)));
      }),
      { numRuns: 300 },
    );
  });

  it("carry the run path's cut of a realistic workload, and of every recorded incident, unchanged", () => {
    const cutter = new WaitInputCutter();
    const inputs = realisticInputs((p) => cutter.cut(p));
    expect(inputs.reduce((n, x) => n + x.batch.spans.length, 0)).toBeGreaterThan(500);
    expect(inputs.some((x) => x.batch.spans.some((s) => s.events.length > 0 && s.attributes !== NO_ATTRS))).toBe(true);
    const back = roundTrip(inputs);
    expect(back).toEqual(inputs);
    expect(shapeOf(back)).toEqual(shapeOf(inputs));
  });

  it("carry what the Kafka thread cuts (protobuf traces as their kept spans), read back as the run path's cut", () => {
    const cutter = new WaitInputCutter();
    const want = realisticInputs((p) => cutter.cut(p));
    // A cutter of its own, which remembers across the inputs as the Kafka thread's does.
    const keptCutter = new WaitInputCutter();
    const kept = realisticInputs((p) => keptCutter.cutKept(p));
    expect(kept.filter((x) => 'kept' in x).length).toBeGreaterThan(3);
    expect(kept.some((x) => !('kept' in x))).toBe(true);
    // A few inputs a frame, as fetched batches come; one writer for all.
    const writer = new CutFrameWriter();
    const back: WaitInput[] = [];
    for (let i = 0; i < kept.length; i += 3) back.push(...roundTrip(kept.slice(i, i + 3), writer));
    expect(back).toEqual(want);
    expect(shapeOf(back)).toEqual(shapeOf(want));
  });

  it('are independent of one another: a writer starts afresh after each take', () => {
    const writer = new CutFrameWriter();
    const [a, b] = fc.sample(input, { numRuns: 2, seed: 7 });
    writer.add(a!);
    const first = writer.take();
    writer.add(b!);
    const second = writer.take();
    expect(readCutFrame(first)).toEqual([a]);
    expect(readCutFrame(second)).toEqual([b]);
  });

  it('refuse a frame that is cut short or runs on', () => {
    const writer = new CutFrameWriter();
    const [x] = fc.sample(input.filter((i) => i.batch.spans.length > 0), { numRuns: 1, seed: 3 });
    writer.add(x!);
    const frame = writer.take();
    expect(() => readCutFrame({ ...frame, ints: Int32Array.from([...frame.ints, 0]) })).toThrow(/do not end where it does/);
    expect(() => readCutFrame({ ...frame, nums: frame.nums.subarray(0, frame.nums.length - 1) })).toThrow();
  });
});
