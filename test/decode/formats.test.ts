/**
 * The formats beyond what the OpenTelemetry JS exporter writes: Jaeger JSON exports, OTLP JSON as other
 * tools write it (base64 ids, snake_case, kinds by name, numbers for int64), the Collector file exporter's
 * outputs (JSON Lines, length-prefixed protobuf), gzip, and files read from disk.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { ATTR, EVENT } from '../../schemas/index.js';
import { decodeBuffer, decodeFile, decodeJaegerJson, decodeOtlpJson, decodeOtlpTracesProto } from '../../processor/src/decode/index.js';
import type { SpanRecord } from '../../processor/src/model/span.js';
import { SpanKind } from '../../processor/src/model/span.js';
import { buildWorkload, generateSpanBatches } from '../../processor/bench/otlp-workload.js';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'decode');
const fixture = (name: string) => readFileSync(join(FIXTURES, name));
const US = 1000; // nanoseconds per microsecond
const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';

function byId(spans: SpanRecord[], spanId: string): SpanRecord {
  const s = spans.find((x) => x.spanId === spanId);
  expect(s, spanId).toBeDefined();
  return s!;
}

describe('Jaeger JSON export', () => {
  const batch = decodeJaegerJson(fixture('jaeger-export.json').toString('utf8'), 'jaeger-export.json');

  it('maps each span: ids, parent from CHILD_OF, kind from span.kind, µs to ns, process to resource', () => {
    expect(batch.spans).toHaveLength(5);
    expect(batch.logEvents).toEqual([]);
    const root = byId(batch.spans, '00f067aa0ba902b7');
    expect(root).toEqual({
      traceId: TRACE,
      spanId: '00f067aa0ba902b7',
      parentSpanId: undefined,
      name: 'HTTP GET /checkout',
      kind: SpanKind.SERVER,
      startTimeUnixNano: 1763700000000000 * US,
      endTimeUnixNano: (1763700000000000 + 250000) * US,
      attributes: { 'http.method': 'GET', 'http.status_code': 200, 'internal.span.format': 'otlp' },
      resource: { [ATTR.SERVICE_NAME]: 'frontend', hostname: 'web-1', [ATTR.SERVICE_INSTANCE_ID]: 'frontend-1' },
      events: [],
    });
  });

  it('turns logs into events named by their `event` field, else `message`, with typed fields', () => {
    const db = byId(batch.spans, 'b7ad6b7169203331');
    expect(db.parentSpanId).toBe('00f067aa0ba902b7');
    expect(db.kind).toBe(SpanKind.CLIENT);
    expect(db.attributes).toEqual({ 'db.system': 'postgresql', [ATTR.THREAD_ID]: 7, 'db.sample_rate': 0.5, 'db.replica': false });
    expect(db.resource).toEqual({ [ATTR.SERVICE_NAME]: 'orders', hostname: 'orders-3', 'process.pid': 4242 });
    expect(db.events).toEqual([
      { name: EVENT.LOCK_WAIT, timeUnixNano: 1763700000011000 * US, attributes: { [ATTR.LOCK_ID]: 'orders-db/orders/42', [ATTR.LOCK_MODE]: 'exclusive' } },
      { name: EVENT.LOCK_ACQUIRE, timeUnixNano: 1763700000012500 * US, attributes: { [ATTR.LOCK_ID]: 'orders-db/orders/42' } },
      { name: 'retrying', timeUnixNano: 1763700000020000 * US, attributes: { attempt: 2 } },
    ]);
  });

  it('makes a span tagged span.partial=true an open snapshot (end 0), binary tags hex', () => {
    const open = byId(batch.spans, 'c1a2b3c4d5e6f708');
    expect(open.endTimeUnixNano).toBe(0);
    expect(open.attributes).toEqual({ [ATTR.SPAN_PARTIAL]: true, 'app.token': '0001abff' });
    expect(open.kind).toBe(SpanKind.UNSPECIFIED);
    expect(open.events).toEqual([
      { name: EVENT.POOL_WAIT, timeUnixNano: 1763700000031000 * US, attributes: { [ATTR.POOL_NAME]: 'orders-db', [ATTR.POOL_SIZE]: 10 } },
    ]);
  });

  it('keeps FOLLOWS_FROM out of the parent link, and shares one resource per process', () => {
    const audit = byId(batch.spans, 'd00d00d00d00d00d');
    expect(audit.parentSpanId).toBeUndefined();
    expect(audit.kind).toBe(SpanKind.PRODUCER);
    expect(audit.resource).toBe(byId(batch.spans, '00f067aa0ba902b7').resource);
  });

  it('pads 64-bit trace ids and ids that lost leading zeros; reads an inline process', () => {
    const cron = byId(batch.spans, '0000005d0e0e4736');
    expect(cron.traceId).toBe('0000000000000000a3ce929d0e0e4736');
    expect(cron.resource).toEqual({ [ATTR.SERVICE_NAME]: 'cron' });
    expect(cron.kind).toBe(SpanKind.INTERNAL);
  });

  it('is recognized by decodeBuffer, and a parsed object decodes alike', () => {
    expect(decodeBuffer(fixture('jaeger-export.json'), 'jaeger-export.json')).toEqual(batch);
    expect(decodeJaegerJson(JSON.parse(fixture('jaeger-export.json').toString('utf8')))).toEqual(batch);
  });
});

describe('OTLP JSON as other tools write it', () => {
  const batch = decodeOtlpJson(fixture('otlp-base64-ids.json').toString('utf8'), 'otlp-base64-ids.json');

  it('reads base64 ids, kind names, string and number int64s', () => {
    const db = byId(batch.spans, 'b7ad6b7169203331');
    expect(db.traceId).toBe(TRACE);
    expect(db.parentSpanId).toBe('00f067aa0ba902b7');
    expect(db.kind).toBe(SpanKind.CLIENT);
    expect(db.startTimeUnixNano).toBe(Number('1763700000010000000'));
    expect(db.endTimeUnixNano).toBe(Number('1763700000130000000'));
    expect(db.resource).toEqual({ [ATTR.SERVICE_NAME]: 'orders', [ATTR.SERVICE_INSTANCE_ID]: 'orders-3', 'process.pid': 4242 });
  });

  it('flattens AnyValues: arrays, kvlist as JSON, bytes as hex, empty as null', () => {
    const db = byId(batch.spans, 'b7ad6b7169203331');
    expect(db.attributes).toEqual({
      'db.system': 'postgresql',
      [ATTR.THREAD_ID]: 7,
      'db.sample_rate': 0.5,
      'db.replica': false,
      'app.token': '0001abff',
      'app.tags': ['a', 2],
      'app.config': '{"retries":3,"mode":"fast"}',
      'app.empty': null,
    });
    expect(db.events.map((e) => e.name)).toEqual([EVENT.LOCK_WAIT, EVENT.LOCK_ACQUIRE]);
  });

  it('reads snake_case fields, upper-case hex and a partial snapshot with end time "0"', () => {
    const open = byId(batch.spans, 'c1a2b3c4d5e6f708');
    expect(open).toEqual({
      traceId: TRACE,
      spanId: 'c1a2b3c4d5e6f708',
      parentSpanId: 'b7ad6b7169203331',
      name: 'reserve stock',
      kind: SpanKind.INTERNAL,
      startTimeUnixNano: Number('1763700000030000000'),
      endTimeUnixNano: 0,
      attributes: { [ATTR.SPAN_PARTIAL]: true },
      resource: byId(batch.spans, 'b7ad6b7169203331').resource,
      events: [{ name: EVENT.POOL_WAIT, timeUnixNano: Number('1763700000031000000'), attributes: { [ATTR.POOL_NAME]: 'orders-db', [ATTR.POOL_SIZE]: 10 } }],
    });
  });

  it('takes an open span with no end time at all as end 0', () => {
    const doc = JSON.parse(fixture('otlp-base64-ids.json').toString('utf8'));
    delete doc.resourceSpans[0].scopeSpans[0].spans[1].end_time_unix_nano;
    expect(byId(decodeOtlpJson(doc).spans, 'c1a2b3c4d5e6f708').endTimeUnixNano).toBe(0);
  });

  it('accepts Jaeger api_v3 responses, which wrap OTLP JSON in "result"', () => {
    const doc = { result: JSON.parse(fixture('otlp-base64-ids.json').toString('utf8')) };
    expect(decodeBuffer(Buffer.from(JSON.stringify(doc)), 'api-v3.json')).toEqual(batch);
  });
});

describe('the Collector file exporter and other containers', () => {
  const workload = buildWorkload({ spans: 1200, batchSize: 500, seed: 7 });
  const expected = workload.batches.flatMap((b) => decodeOtlpTracesProto(b).spans);
  const dir = mkdtempSync(join(tmpdir(), 'waitgraph-decode-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('the workload is what it claims: spans, wait events, partial snapshots', () => {
    expect(expected).toHaveLength(workload.spanCount);
    expect(expected.reduce((n, s) => n + s.events.length, 0)).toBe(workload.eventCount);
    expect(expected.filter((s) => s.endTimeUnixNano === 0 && s.attributes[ATTR.SPAN_PARTIAL] === true)).toHaveLength(workload.partialCount);
  });

  it('reads format: proto, every message behind a 4-byte big-endian length', () => {
    const frames = workload.batches.map((b) => {
      const f = Buffer.alloc(4 + b.length);
      f.writeUInt32BE(b.length, 0);
      f.set(b, 4);
      return f;
    });
    expect(decodeBuffer(Buffer.concat(frames), 'traces.binpb').spans).toEqual(expected);
  });

  it('reads format: json, one request per line', () => {
    const json = buildWorkload({ spans: 1200, batchSize: 500, seed: 7, encoding: 'json' });
    const text = json.batches.map((b) => Buffer.from(b).toString('utf8')).join('\n') + '\n';
    expect(decodeBuffer(Buffer.from(text), 'traces.jsonl').spans).toEqual(expected);
  });

  it('unwraps gzip, and decodeFile reads from disk', async () => {
    const file = join(dir, 'batch.pb.gz');
    writeFileSync(file, gzipSync(workload.batches[0]));
    expect((await decodeFile(file)).spans).toEqual(decodeOtlpTracesProto(workload.batches[0]).spans);
  });

  it('names a missing file in an io error', async () => {
    await expect(decodeFile(join(dir, 'nope.json'))).rejects.toMatchObject({ code: 'io', message: expect.stringContaining('nope.json') });
  });
});

describe('OTLP protobuf span ids', () => {
  it('decodes every span id and parent id as the SDK set them, through the cache of ids that children share', () => {
    // 6,000 spans: far more ids than the cache has slots, so slots are taken over again and again.
    const batches = generateSpanBatches({ spans: 6_000, batchSize: 500, seed: 11 });
    let checked = 0;
    for (const batch of batches) {
      const decoded = decodeOtlpTracesProto(ProtobufTraceSerializer.serializeRequest(batch)!).spans;
      expect(decoded).toHaveLength(batch.length);
      batch.forEach((sdk, i) => {
        expect(decoded[i].traceId).toBe(sdk.spanContext().traceId);
        expect(decoded[i].spanId).toBe(sdk.spanContext().spanId);
        expect(decoded[i].parentSpanId).toBe(sdk.parentSpanContext?.spanId);
        checked++;
      });
    }
    expect(checked).toBe(6_000);
  });
});
