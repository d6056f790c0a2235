/**
 * The fused protobuf cut (`cutOtlpTracesProto`, the path of every OTLP protobuf trace input of `waitgraph
 * run`) against its reference: the protobuf decoder, then `WaitRecordBuilder` (`cutDecoded`). Random
 * requests, a few in a row through one cutter each (snapshots in one, their ended versions in a later one),
 * must give the same records, the same counts and the same memory of open spans, and the decode stage the
 * same wait records; damaged requests the same error. So must the Kafka thread's form of the cut
 * (`cutOtlpTracesProtoKept`, the kept spans' bytes, made records by `keptRecords` on the event loop).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ATTR, EVENT_NAMES, PROXY_COMPONENT } from '../../schemas/index.js';
import { DecodeError } from '../../processor/src/decode/index.js';
import { cutDecoded, decodeOtlpPayload, WaitInputCutter, type WaitInput } from '../../processor/src/run/index.js';
import { cutOtlpTracesProto, cutOtlpTracesProtoKept, keptRecords } from '../../processor/src/scale/wait-cut.js';
import { WAIT_SPAN_ATTRIBUTES, WaitRecordBuilder, type WaitFilterOptions } from '../../processor/src/scale/wait-records.js';
import { buildWorkload } from '../../processor/bench/otlp-workload.js';
import { double, fixed32, fixed64, hex, kv, ld, message, str, vfield, type Bytes } from '../decode/proto-writer.js';

const TRACES = ['5b8efff798038103d269b633813fc60c', '0af7651916cd43dd8448eb211c80319c'];
const SPAN_IDS = ['eee19b7ec3c1b174', '00f067aa0ba902b7', 'b7ad6b7169203331', '53995c3f42cd8ad8', '0123456789abcdef', 'a1b2c3d4e5f60718'];
const ZERO_ID = '0000000000000000';

/** An AnyValue of any type the decoder reads, or none at all. */
const anyValue: fc.Arbitrary<Bytes> = fc.oneof(
  fc.constantFrom(PROXY_COMPONENT, 'db', 't-1', '').map((s) => str(1, s)),
  fc.boolean().map((b) => vfield(2, b ? 1 : 0)),
  fc.integer({ min: -3, max: 1_000 }).map((n) => vfield(3, n)),
  fc.double({ noNaN: true }).map((x) => double(4, x)),
  fc.array(fc.constantFrom('a', 'proxy'), { maxLength: 2 }).map((xs) => ld(5, ...xs.map((x) => ld(1, str(1, x))))),
  fc.constant(ld(6, ld(1, kv('k', str(1, 'v'))))),
  fc.constant(ld(7, hex('beef'))),
  fc.constant([] as Bytes),
);

const attrKey = fc.constantFrom(ATTR.TASK_ID, ATTR.THREAD_ID, ATTR.COMPONENT, ATTR.SPAN_PARTIAL, ATTR.TASK_DETACHED, ATTR.HTTP_RESEND_COUNT, ATTR.LOCK_ID, 'http.route', 'x');
/**
 * A KeyValue, its key first as serializers write it, or its value first (as protobuf allows); now and then
 * without a key, which the decoder reads whole (so damage in it must fail the cut too), or with two keys,
 * of which the last is the key (protobuf: a field that comes twice keeps its last value).
 */
const attribute = fc.oneof(
  { weight: 9, arbitrary: fc.tuple(attrKey, anyValue, fc.boolean()).map(([k, v, valueFirst]) => (valueFirst ? [...ld(2, v), ...str(1, k)] : kv(k, v))) },
  { weight: 1, arbitrary: fc.tuple(attrKey, attrKey, anyValue, fc.nat({ max: 2 })).map(([k1, k2, v, at]) => [[...str(1, k1), ...str(1, k2), ...ld(2, v)], [...str(1, k1), ...ld(2, v), ...str(1, k2)], [...ld(2, v), ...str(1, k1), ...str(1, k2)]][at]) },
  { weight: 1, arbitrary: anyValue.map((v) => ld(2, v)) },
);

/** Span fields the cut does not read: trace state, dropped counts, a link, a status, flags. */
const unreadSpanField = fc.constantFrom(
  str(3, 'rojo=00f067aa0ba902b7'),
  vfield(10, 2),
  ld(13, ld(1, hex(TRACES[1])), ld(2, hex(SPAN_IDS[2]))),
  ld(15, str(2, 'timed out'), vfield(3, 2)),
  fixed32(16, 0x301),
);

/**
 * An event's name field; now and then with its length as a two-byte varint (protobuf allows it; the scan
 * tells a wait event by its name's bytes, and must read the length as the decoder does).
 */
const eventName = fc
  .tuple(fc.constantFrom(...EVENT_NAMES.slice(0, 6), 'exception', 'retry'), fc.integer({ min: 0, max: 9 }))
  .map(([name, k]) => (k === 0 ? [0x12, 0x80 | Buffer.byteLength(name), 0x00, ...Buffer.from(name, 'utf8')] : str(2, name)));
/** An event: mostly one name, now and then none or two (the last is its name). */
const eventNames = fc.oneof({ weight: 8, arbitrary: eventName.map((n) => [n]) }, { weight: 2, arbitrary: fc.array(eventName, { maxLength: 2 }) });
const event = fc
  .record({ names: eventNames, time: fc.integer({ min: 1, max: 50 }), attrs: fc.array(attribute, { maxLength: 3 }) })
  .map((e) => [...fixed64(1, BigInt(1.7e18) + BigInt(e.time) * 1000n), ...e.names.flat(), ...e.attrs.flatMap((a) => ld(3, a))]);

const span = fc
  .record({
    trace: fc.nat({ max: TRACES.length - 1 }),
    id: fc.nat({ max: SPAN_IDS.length - 1 }),
    parent: fc.oneof(fc.nat({ max: SPAN_IDS.length - 1 }), fc.constantFrom(-1, -2)),
    name: fc.constantFrom('GET /orders', 'work', ''),
    kind: fc.nat({ max: 6 }),
    start: fc.integer({ min: 1, max: 100 }),
    length: fc.option(fc.integer({ min: 0, max: 100 }), { freq: 4 }),
    attrs: fc.array(attribute, { maxLength: 5 }),
    events: fc.array(event, { maxLength: 3 }),
    unread: fc.array(unreadSpanField, { maxLength: 3 }),
  })
  .map((s) => {
    // Fields it does not read among those it does.
    const fields: Bytes[] = [ld(1, hex(TRACES[s.trace])), ...s.unread, ld(2, hex(SPAN_IDS[s.id]))];
    if (s.parent !== -1) fields.push(ld(4, hex(s.parent === -2 ? ZERO_ID : SPAN_IDS[s.parent])));
    if (s.name !== '') fields.push(str(5, s.name));
    if (s.kind !== 0) fields.push(vfield(6, s.kind));
    const start = BigInt(1.7e18) + BigInt(s.start) * 1000n;
    fields.push(fixed64(7, start));
    if (s.length !== null) fields.push(fixed64(8, start + BigInt(s.length) * 1000n));
    for (const a of s.attrs) fields.push(ld(9, a));
    for (const e of s.events) fields.push(ld(11, e));
    return ld(2, ...fields);
  });

const resource = fc
  .record({
    service: fc.constantFrom('checkout', 'mesh-proxy', 'ledger'),
    instance: fc.option(fc.constantFrom('i-1', 'i-2')),
    numericService: fc.boolean(),
  })
  .map((r) => {
    const attrs: Bytes[] = [kv(ATTR.SERVICE_NAME, r.numericService ? vfield(3, 7) : str(1, r.service))];
    if (r.instance !== null) attrs.push(kv(ATTR.SERVICE_INSTANCE_ID, str(1, r.instance)));
    return ld(1, ...attrs.map((a) => ld(1, a)));
  });

/** An ExportTraceServiceRequest: resources, each with scopes of spans (the resource sometimes after the spans). */
const request = fc
  .array(fc.tuple(resource, fc.array(fc.array(span, { maxLength: 6 }), { minLength: 1, maxLength: 2 }), fc.boolean()), { minLength: 1, maxLength: 3 })
  .map((rss) =>
    message(
      ...rss.map(([res, scopes, resourceLast]) => {
        const scopeFields = scopes.map((spans) => ld(2, ...spans));
        return ld(1, ...(resourceLast ? [...scopeFields, res] : [res, ...scopeFields]));
      }),
    ),
  );

const filters: fc.Arbitrary<WaitFilterOptions> = fc.record({
  proxyServices: fc.constantFrom(undefined, [], ['mesh-proxy']),
  keepAncestors: fc.constantFrom(undefined, true, false),
});

/** The reference: the whole decoder, then the builder. */
function reference(builder: WaitRecordBuilder, bytes: Uint8Array): WaitInput {
  return cutDecoded(builder, decodeOtlpPayload('traces', 'proto', bytes, 'spans/0@1', WAIT_SPAN_ATTRIBUTES));
}

/** What a call gives: its result, or its error's message. */
function outcome(f: () => WaitInput): { ok: WaitInput } | { error: string } {
  try {
    return { ok: f() };
  } catch (err) {
    expect(err).toBeInstanceOf(DecodeError);
    return { error: (err as Error).message };
  }
}

describe('the fused protobuf cut', () => {
  it('gives what decoding and then cutting gives, request after request', () => {
    fc.assert(
      fc.property(fc.array(request, { minLength: 1, maxLength: 4 }), filters, (requests, filter) => {
        const ref = new WaitRecordBuilder(filter);
        const fused = new WaitRecordBuilder(filter);
        const kept = new WaitRecordBuilder(filter);
        // The decode stage's two ways to wait records: decoded spans added, or spans cut here added cut.
        const stage = new WaitRecordBuilder(filter);
        const stageFused = new WaitRecordBuilder(filter);
        requests.forEach((bytes, i) => {
          const want = reference(ref, bytes);
          const got = cutOtlpTracesProto(bytes, 'spans/0@1', fused);
          expect(got.spans).toEqual(want.batch.spans);
          expect(got.spansIn).toBe(want.spans);
          expect(got.waitEvents).toBe(want.waitEvents);
          // Moved to another thread (a clone) and made records there.
          const k = structuredClone(cutOtlpTracesProtoKept(bytes, 'spans/0@1', kept));
          expect(keptRecords(k, 'cut frame')).toEqual(want.batch.spans);
          expect([k.count, k.spansIn, k.waitEvents]).toEqual([want.batch.spans.length, want.spans, want.waitEvents]);
          stage.add(decodeOtlpPayload('traces', 'proto', bytes, 'spans/0@1', WAIT_SPAN_ATTRIBUTES), 1_000 + i);
          stageFused.addCut(cutOtlpTracesProto(bytes, 'spans/0@1', stageFused), 1_000 + i);
          // Two messages in a wait-record batch, or one.
          if (i % 2 === 1) expect(stageFused.take()).toEqual(stage.take());
        });
        expect(stageFused.take()).toEqual(stage.take());
        expect(fused.counts).toEqual(ref.counts);
        expect(kept.counts).toEqual(ref.counts);
        expect(stageFused.counts).toEqual(stage.counts);
        // The same memory of open spans, and of the ancestors walks looked for: every span id either way alike.
        for (const t of TRACES) {
          for (const s of SPAN_IDS) {
            const want = [ref.open.has(t, s), ref.wanted.has(t, s)];
            expect([fused.open.has(t, s), fused.wanted.has(t, s)]).toEqual(want);
            expect([kept.open.has(t, s), kept.wanted.has(t, s)]).toEqual(want);
          }
        }
      }),
      { numRuns: 400 },
    );
  });

  it('fails a damaged request as the decoder does, with the same message', () => {
    fc.assert(
      fc.property(request, fc.nat(), fc.nat({ max: 255 }), fc.boolean(), (bytes, at, value, truncate) => {
        const i = at % bytes.length;
        const damaged = truncate ? bytes.subarray(0, i) : bytes.map((b, k) => (k === i ? value : b));
        const want = outcome(() => reference(new WaitRecordBuilder(), damaged));
        const got = outcome(() => {
          const cut = cutOtlpTracesProto(damaged, 'spans/0@1', new WaitRecordBuilder());
          return { batch: { spans: cut.spans, logEvents: [] }, spans: cut.spansIn, waitEvents: cut.waitEvents };
        });
        const gotKept = outcome(() => {
          const k = cutOtlpTracesProtoKept(damaged, 'spans/0@1', new WaitRecordBuilder());
          return { batch: { spans: keptRecords(k, 'cut frame'), logEvents: [] }, spans: k.spansIn, waitEvents: k.waitEvents };
        });
        if ('error' in want) {
          expect(got).toEqual(want);
          expect(gotKept).toEqual(want);
        } else {
          expect('ok' in got && got.ok.batch.spans).toEqual(want.ok.batch.spans);
          expect('ok' in gotKept && gotKept.ok.batch.spans).toEqual(want.ok.batch.spans);
        }
      }),
      { numRuns: 600 },
    );
  });

  it('fails on damage in an attribute without a key, which the decoder reads whole', () => {
    // The AnyValue holds a field of wire type 7, which does not exist.
    const bytes = message(ld(1, ld(2, ld(2, ld(1, hex(TRACES[0])), ld(2, hex(SPAN_IDS[0])), str(5, 'work'), ld(9, ld(2, [0x0f, 0]))))));
    const want = outcome(() => reference(new WaitRecordBuilder(), bytes));
    expect(want).toEqual({ error: expect.stringMatching(/invalid wire type 7/) });
    const got = outcome(() => {
      const cut = cutOtlpTracesProto(bytes, 'spans/0@1', new WaitRecordBuilder());
      return { batch: { spans: cut.spans, logEvents: [] }, spans: cut.spansIn, waitEvents: cut.waitEvents };
    });
    expect(got).toEqual(want);
  });

  it('fails as the decoder does for any byte of a field it does not keep, changed to any other', () => {
    // The scan checks what it does not decode: a kept attribute of a span it drops, an attribute without a
    // key, an event's attributes; and skips an attribute under another key by its length alone, as the
    // decoder does. Every value kind, in each place, every byte of the field (its tag, its length, its key,
    // its value) set to every value: the enclosing lengths stay, so the damage shows inside the field (a
    // short double, a varint running on, a length past its end), where the random test above rarely lands.
    const values = [
      str(1, 't-1'),
      vfield(2, 1),
      vfield(3, 300),
      double(4, 2.5),
      ld(5, ld(1, str(1, 'a'))),
      ld(6, ld(1, kv('k', str(1, 'v')))),
      ld(7, hex('beef')),
      // Fields the decoder skips: in an AnyValue, in an array, in a kvlist.
      [...vfield(9, 5), ...str(1, 'x')],
      ld(5, vfield(2, 1), ld(1, str(1, 'a'))),
      ld(6, vfield(2, 1), ld(1, kv('k', str(1, 'v')))),
    ];
    // Each KeyValue and the event also carry a field the decoder skips.
    const fieldOf = (value: Bytes, place: number): Bytes => {
      if (place === 0) return ld(9, str(1, ATTR.TASK_ID), vfield(3, 7), ld(2, value));
      if (place === 1) return ld(9, vfield(3, 7), ld(2, value));
      if (place === 2) return ld(9, kv('http.route', value));
      return ld(11, [...str(2, 'exception'), ...vfield(4, 1), ...ld(3, [...str(1, 'x'), ...vfield(3, 7), ...ld(2, value)])]);
    };
    const ids = [ld(1, hex(TRACES[0])), ld(2, hex(SPAN_IDS[0])), str(5, 'work'), fixed64(7, 1_700_000_000_000_000_000n), fixed64(8, 1_700_000_000_000_001_000n)];
    let failures = 0;
    for (const value of values) {
      for (let place = 0; place < 4; place++) {
        const field = fieldOf(value, place);
        // The field ends the span, and the span the message.
        const whole = message(ld(1, ld(2, ld(2, ...ids, field))));
        for (let i = whole.length - field.length; i < whole.length; i++) {
          for (let v = 0; v < 256; v++) {
            if (v === whole[i]) continue;
            const damaged = whole.map((b, k) => (k === i ? v : b));
            const want = outcome(() => reference(new WaitRecordBuilder(), damaged));
            const got = outcome(() => {
              const cut = cutOtlpTracesProto(damaged, 'spans/0@1', new WaitRecordBuilder());
              return { batch: { spans: cut.spans, logEvents: [] }, spans: cut.spansIn, waitEvents: cut.waitEvents };
            });
            if ('error' in want) {
              failures++;
              expect(got).toEqual(want);
            } else expect('ok' in got && got.ok.batch.spans).toEqual(want.ok.batch.spans);
          }
        }
      }
    }
    expect(failures).toBeGreaterThan(1_000);
  });

  it('is what the cutter runs for protobuf traces: a realistic workload cut alike both ways', () => {
    const work = buildWorkload({ spans: 3_000, batchSize: 250, seed: 9, services: 2, partialsEndAfter: 2 });
    const cutter = new WaitInputCutter();
    const keptCutter = new WaitInputCutter();
    const ref = new WaitRecordBuilder();
    let kept = 0;
    work.batches.forEach((bytes, i) => {
      const got = cutter.cut({ signal: 'traces', encoding: 'proto', bytes, name: `spans/0@${i}` });
      const want = reference(ref, bytes);
      expect(got.batch.spans).toEqual(want.batch.spans);
      const k = keptCutter.cutKept({ signal: 'traces', encoding: 'proto', bytes, name: `spans/0@${i}` });
      expect('kept' in k ? keptRecords(k.kept, 'cut frame') : k.batch.spans).toEqual(want.batch.spans);
      expect([got.spans, got.waitEvents]).toEqual([want.spans, want.waitEvents]);
      kept += got.batch.spans.length;
    });
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThan(work.spanCount);
  });
});
