/**
 * Wait records: the filter keeps what detection needs, the wire form follows its JSON Schema and comes back
 * unchanged, and every recorded incident gives the same findings through wait records as from its spans.
 */
import { Ajv } from 'ajv';
import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeFile, decodeOtlpTracesProto } from '../../processor/src/decode/index.js';
import { Detector } from '../../processor/src/engine/index.js';
import type { DecodedBatch, SpanRecord } from '../../processor/src/model/span.js';
import { SpanKind } from '../../processor/src/model/span.js';
import { decodeWaitRecordBatch, encodeWaitRecordBatch, selectWaitSpans, WaitRecordBuilder } from '../../processor/src/scale/index.js';
import { buildWorkload } from '../../processor/bench/otlp-workload.js';
import { WaitgraphError } from '../../processor/src/errors.js';
import { lock, span } from '../support/span-factory.js';

const validate = new Ajv({ allErrors: true, strict: false }).compile(
  JSON.parse(readFileSync(new URL('../../schemas/wait-record.schema.json', import.meta.url), 'utf8')),
);

/** The wait-record path: build, encode, decode. */
function throughWaitRecords(batch: DecodedBatch, observedAtMs = 1_000): DecodedBatch {
  const b = new WaitRecordBuilder();
  b.add(batch, observedAtMs);
  const msg = b.take()!;
  expect(validate(msg), JSON.stringify(validate.errors)).toBe(true);
  return decodeWaitRecordBatch(encodeWaitRecordBatch(msg)).batch;
}

function findings(batches: DecodedBatch[]) {
  const d = new Detector();
  for (const b of batches) {
    d.addBatch(b);
    d.detect();
  }
  return d.findings();
}

describe('the wait-record filter', () => {
  const root = span({ service: 'orders', name: 'POST /orders', kind: SpanKind.SERVER, start: 0, end: 100 });
  const mid = span({ service: 'orders', name: 'reserve', parent: root, start: 1, end: 90 });
  const locker = span({ service: 'orders', name: 'lock row', parent: mid, start: 2, end: 80, events: [[3, 'lock.acquire', lock('L1')]] });
  const plain = span({ service: 'orders', name: 'render', parent: root, start: 5, end: 6, events: [[5, 'cache.miss']] });
  const call = span({ service: 'orders', name: 'GET /stock', parent: root, kind: SpanKind.CLIENT, start: 7, end: 9 });
  const open = span({ service: 'orders', name: 'work', parent: root, start: 10 });
  const hop = span({ service: 'mesh', name: 'egress', parent: root, start: 11, end: 12, attrs: { component: 'proxy' } });
  const sidecar = span({ service: 'envoy', name: 'ingress', parent: root, start: 11, end: 12 });

  it('keeps spans with wait events, open spans, retry attempts and proxy hops, and drops the rest: ended spans of any kind without wait events', () => {
    const retry = span({ service: 'orders', name: 'GET /stock', parent: root, kind: SpanKind.CLIENT, start: 8, end: 9, attrs: { 'http.request.resend_count': 1 } });
    const kept = selectWaitSpans([root, plain, call, retry, open, hop, sidecar], { proxyServices: ['envoy'] });
    expect(kept.map((s) => `${s.name}${s.attributes['http.request.resend_count'] ? ' (retry)' : ''}`)).toEqual(['GET /stock (retry)', 'work', 'egress', 'ingress']);
    expect(selectWaitSpans([plain, sidecar, root, call]).map((s) => s.name)).toEqual([]);
  });

  it('keeps the in-message ancestors of an ended span with wait events, the chain a hold is handed along', () => {
    expect(selectWaitSpans([root, mid, locker, plain]).map((s) => s.name)).toEqual(['POST /orders', 'reserve', 'lock row']);
    expect(selectWaitSpans([root, mid, locker], { keepAncestors: false }).map((s) => s.name)).toEqual(['lock row']);
  });

  it('follows the chain into later messages: the ancestors of a span with wait events that come after it pass', () => {
    const names = (b: WaitRecordBuilder) => b.take()?.spans.map((s) => s.name) ?? [];
    const b = new WaitRecordBuilder();
    // Spans end before their parents and are exported first: the chain comes from the bottom up.
    b.add({ spans: [locker, plain], logEvents: [] }, 1_000);
    expect(names(b)).toEqual(['lock row']);
    expect(b.wanted.has(mid.traceId, mid.spanId)).toBe(true);
    b.add({ spans: [mid], logEvents: [] }, 2_000);
    expect(names(b)).toEqual(['reserve']);
    b.add({ spans: [plain, root], logEvents: [] }, 3_000);
    expect(names(b)).toEqual(['POST /orders']);
    // Each passed once: a version that comes again is cut, as the filter alone would.
    expect([b.wanted.has(mid.traceId, mid.spanId), b.wanted.has(root.traceId, root.spanId)]).toEqual([false, false]);
    b.add({ spans: [root, mid], logEvents: [] }, 4_000);
    expect(names(b)).toEqual([]);
    // Without ancestors, no walk looks for any.
    const flat = new WaitRecordBuilder({ keepAncestors: false });
    flat.add({ spans: [locker], logEvents: [] }, 1_000);
    expect(flat.wanted.has(mid.traceId, mid.spanId)).toBe(false);
  });

  it('passes a span that a wait log record it passed named, which the filter alone would cut', () => {
    const waiter = span({ service: 'orders', name: 'work', parent: root, start: 10, end: 20 }); // INTERNAL, its wait only logged
    const log = { traceId: waiter.traceId, spanId: waiter.spanId, name: 'lock.wait', timeUnixNano: waiter.startTimeUnixNano, attributes: { 'lock.id': 'A' }, resource: waiter.resource };
    const b = new WaitRecordBuilder();
    b.add({ spans: [], logEvents: [log] }, 1_000);
    expect(b.take()?.logEvents).toHaveLength(1);
    b.add({ spans: [waiter], logEvents: [] }, 2_000);
    expect(b.take()?.spans.map((s) => s.name)).toEqual(['work']);
    // Once its ended version passed, it is let go: another span of the filter's kind is cut again.
    expect(b.wanted.has(waiter.traceId, waiter.spanId)).toBe(false);
  });

  it('passes the ancestors of such a span when it ends, even after it passed open', () => {
    // A lock taken in `take`, logged; `take` is seen open, then ends, then `reserve` above it ends.
    const take = span({ service: 'orders', name: 'take', parent: mid, start: 2, end: 80 });
    const log = { traceId: take.traceId, spanId: take.spanId, name: 'lock.acquire', timeUnixNano: take.startTimeUnixNano, attributes: lock('L1'), resource: take.resource };
    const names = (b: WaitRecordBuilder) => b.take()?.spans.map((s) => `${s.name}${s.end ? '' : ' (open)'}`) ?? [];
    const b = new WaitRecordBuilder();
    b.add({ spans: [], logEvents: [log] }, 1_000);
    b.add({ spans: [{ ...take, endTimeUnixNano: 0 }], logEvents: [] }, 2_000);
    expect(names(b)).toEqual(['take (open)']);
    b.add({ spans: [take], logEvents: [] }, 3_000);
    expect(names(b)).toEqual(['take']);
    // The hold goes up the chain when `take` ends: `reserve` passes.
    b.add({ spans: [mid], logEvents: [] }, 4_000);
    expect(names(b)).toEqual(['reserve']);
  });

  it('passes the ended version of a span it passed open, which the filter alone would cut', () => {
    const snapshot = span({ service: 'orders', name: 'work', parent: root, start: 10 }); // INTERNAL, no events
    const ended = span({ service: 'orders', name: 'work', parent: root, start: 10, end: 20 });
    const never = span({ service: 'orders', name: 'render', parent: root, start: 5, end: 6 });
    const spansOf = (b: WaitRecordBuilder) => b.take()?.spans.map((s) => `${s.name}${s.end ? ' ended' : ' open'}`) ?? [];
    const b = new WaitRecordBuilder();
    b.add({ spans: [snapshot], logEvents: [] }, 1_000);
    expect(spansOf(b)).toEqual(['work open']);
    b.add({ spans: [never, ended], logEvents: [] }, 2_000);
    expect(spansOf(b)).toEqual(['work ended']);
    b.add({ spans: [{ ...ended, endTimeUnixNano: ended.endTimeUnixNano + 1 }], logEvents: [] }, 3_000);
    expect(spansOf(b)).toEqual([]); // once ended, it is forgotten: a later copy is cut as the filter says
    // Both versions in one input, the ended one first (out of order within a batch).
    const c = new WaitRecordBuilder();
    c.add({ spans: [ended, never, snapshot], logEvents: [] }, 1_000);
    expect(spansOf(c)).toEqual(['work ended', 'work open']);
    // The same span id in another trace was never open.
    const d = new WaitRecordBuilder();
    d.add({ spans: [snapshot], logEvents: [] }, 1_000);
    d.take();
    d.add({ spans: [{ ...ended, traceId: 'f'.repeat(32) }], logEvents: [] }, 2_000);
    expect(spansOf(d)).toEqual([]);
  });

  it('cuts a span down to what detection reads and brings it back intact', () => {
    const s = span({
      service: 'orders',
      instance: 'orders-1',
      name: 'lock row',
      parent: root,
      start: 2,
      attrs: { 'task.id': 'worker-3', 'db.query.text': 'SELECT 1', 'http.request.resend_count': 2 },
      events: [
        [3, 'lock.wait', { ...lock('L1', 'shared', 'row'), 'exception.message': 'x' }],
        [4, 'log', { message: 'hi' }],
        [5, 'task.wait', { 'task.wait.on': ['a', 'b'], 'task.wait.mode': 'any' }],
      ],
    });
    const [back] = throughWaitRecords({ spans: [s], logEvents: [] }).spans;
    expect(back).toEqual({
      ...s,
      attributes: { 'task.id': 'worker-3', 'http.request.resend_count': 2, 'span.partial': true },
      resource: { 'service.name': 'orders', 'service.instance.id': 'orders-1' },
      events: [
        { name: 'lock.wait', timeUnixNano: s.events[0].timeUnixNano, attributes: lock('L1', 'shared', 'row') },
        { name: 'task.wait', timeUnixNano: s.events[2].timeUnixNano, attributes: { 'task.wait.on': ['a', 'b'], 'task.wait.mode': 'any' } },
      ],
    });
  });

  it('carries log events and the observation time, and counts what it read', () => {
    const b = new WaitRecordBuilder();
    const logEvent = { traceId: root.traceId, spanId: root.spanId, name: 'lock.wait', timeUnixNano: root.startTimeUnixNano, attributes: lock('L9'), resource: root.resource };
    b.add({ spans: [root, plain], logEvents: [logEvent] }, 2_000);
    b.add({ spans: [plain], logEvents: [] }, 1_500);
    const msg = b.take()!;
    expect(msg).toMatchObject({ observedAtMs: 1_500, sourceSpans: 3, sourceLogEvents: 1 });
    const back = decodeWaitRecordBatch(encodeWaitRecordBatch(msg));
    expect(back.observedAtMs).toBe(1_500);
    expect(back.batch.spans.map((s) => s.name)).toEqual(['POST /orders']);
    expect(back.batch.logEvents).toEqual([{ ...logEvent, resource: { 'service.name': 'orders' } }]);
    expect(b.take()).toBeUndefined();
    expect(b.counts).toMatchObject({ spansIn: 3, spansKept: 1, logEventsIn: 1, eventsKept: 1 });
  });

  it('keeps a minority of a realistic workload, every span with wait events among them, valid against the schema', () => {
    const work = buildWorkload({ spans: 20_000, batchSize: 500, seed: 3 });
    const b = new WaitRecordBuilder();
    let waitSpans = 0;
    let keptWaitSpans = 0;
    for (const bytes of work.batches) {
      const batch = decodeOtlpTracesProto(bytes);
      waitSpans += batch.spans.filter((s) => s.events.length > 0).length;
      b.add(batch, 1);
      const msg = b.take()!;
      expect(validate(msg), JSON.stringify(validate.errors)).toBe(true);
      keptWaitSpans += msg.spans.filter((s) => s.events?.length).length;
    }
    expect(keptWaitSpans).toBe(waitSpans);
    const ratio = b.counts.spansKept / b.counts.spansIn;
    expect(ratio).toBeGreaterThan(0.1);
    expect(ratio).toBeLessThan(0.6);
  });
});

describe('wait-record decoding', () => {
  const bad = (text: string) => () => decodeWaitRecordBatch(Buffer.from(text), 'waitgraph.waits/0@7');
  const ok = { v: 1, observedAtMs: 1, sourceSpans: 0, sourceLogEvents: 0, resources: [{}], spans: [], logEvents: [] };
  const spanOf = (over: object) => JSON.stringify({ ...ok, spans: [{ resource: 0, traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), name: 'x', kind: 1, start: 1, end: 0, ...over }] });

  it('rejects what is not a wait-record batch as bad input, naming where', () => {
    expect(bad('{')).toThrow(/waitgraph\.waits\/0@7: \$: not JSON/);
    expect(bad(JSON.stringify({ ...ok, v: 2 }))).toThrow(/unknown wait-record version 2/);
    expect(bad(spanOf({ spanId: 'xyz' }))).toThrow(/spans\[0\]\.spanId: must be 16 lowercase hex digits/);
    expect(bad(spanOf({ resource: 3 }))).toThrow(/spans\[0\]\.resource: resource index 3 out of range/);
    expect(bad(spanOf({ events: [{ name: 'lock.wait' }] }))).toThrow(/events\[0\]: an event needs a name and a time/);
    try {
      bad('[]')();
    } catch (err) {
      expect(err).toBeInstanceOf(WaitgraphError);
      expect((err as WaitgraphError).code).toBe('bad-input');
    }
    expect(decodeWaitRecordBatch(Buffer.from(spanOf({}))).batch.spans).toHaveLength(1);
  });
});

describe('every recorded incident through wait records', () => {
  const dir = new URL('../fixtures/scenarios/', import.meta.url);
  const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();

  for (const file of files) {
    it(`${file}: the same findings as from the spans, in one message or one message a span`, async () => {
      const { spans, logEvents } = await decodeFile(new URL(file, dir).pathname);
      const expected = findings([{ spans, logEvents }]);
      expect(findings([throughWaitRecords({ spans, logEvents })])).toEqual(expected);
      // One span a message, detecting after each: no ancestor is in the same message as its descendant.
      const single: DecodedBatch[] = spans.map((s: SpanRecord) => ({ spans: [s], logEvents: [] }));
      if (logEvents.length) single.push({ spans: [], logEvents });
      expect(findings(single.map((b) => throughWaitRecords(b)))).toEqual(findings(single));
    });
  }
});
