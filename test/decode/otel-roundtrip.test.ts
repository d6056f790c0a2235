/**
 * Round trip against the real OpenTelemetry JS SDK and its OTLP serializers: spans (one of them still open,
 * exported as a partial snapshot) and log-based events are made by the SDK, serialized as OTLP JSON and
 * OTLP protobuf by `@opentelemetry/otlp-transformer`, decoded by ours, and compared field by field with
 * what the SDK recorded.
 */
import { ROOT_CONTEXT, SpanKind, trace, type HrTime } from '@opentelemetry/api';
import { JsonLogsSerializer, JsonTraceSerializer, ProtobufLogsSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { InMemoryLogRecordExporter, LoggerProvider, SimpleLogRecordProcessor, type ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider, type ReadableSpan } from '@opentelemetry/sdk-trace';
import { beforeAll, describe, expect, it } from 'vitest';
import { ATTR, EVENT } from '../../schemas/index.js';
import {
  decodeBuffer,
  decodeOtlpJson,
  decodeOtlpLogsProto,
  decodeOtlpProto,
  decodeOtlpTracesProto,
} from '../../processor/src/decode/index.js';
import type { DecodedBatch, LogEventRecord, SpanRecord } from '../../processor/src/model/span.js';

const RESOURCE = {
  [ATTR.SERVICE_NAME]: 'checkout',
  [ATTR.SERVICE_INSTANCE_ID]: 'checkout-7f9c',
  'host.name': 'node-1',
  'process.pid': 4242,
};

/** Unix nanoseconds of an HrTime, rounded once to a double (as the decoders do). */
function nanos(t: HrTime): number {
  return Number(BigInt(t[0]) * 1_000_000_000n + BigInt(t[1]));
}

let ended: ReadableSpan[] = [];
let open: ReadableSpan;
let allSpans: ReadableSpan[] = [];
let logRecords: ReadableLogRecord[] = [];

beforeAll(async () => {
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({
    resource: resourceFromAttributes(RESOURCE),
    spanProcessors: [new SimpleSpanProcessor({ exporter })],
  });
  const tracer = provider.getTracer('waitgraph-decode-test', '1.0.0');
  const t0 = Date.now();
  const root = tracer.startSpan('POST /checkout', {
    kind: SpanKind.SERVER,
    startTime: t0,
    attributes: { 'http.request.method': 'POST', 'http.response.status_code': 200, [ATTR.THREAD_ID]: 7 },
  });
  const rootCtx = trace.setSpan(ROOT_CONTEXT, root);
  const db = tracer.startSpan('SELECT orders', { kind: SpanKind.CLIENT, startTime: t0 + 1 }, rootCtx);
  db.setAttributes({
    'db.system': 'postgresql',
    'app.ratio': 0.25,
    'app.flags': [true, false],
    'app.ids': [1, 2, 3],
    'app.names': ['a', 'ü-ñ', ''],
    'app.big': 2 ** 40 + 3,
    'app.negative': -12,
  });
  db.addEvent(EVENT.POOL_WAIT, { [ATTR.POOL_NAME]: 'orders-db', [ATTR.POOL_SIZE]: 10 }, t0 + 2);
  db.addEvent(EVENT.POOL_CHECKOUT, { [ATTR.POOL_NAME]: 'orders-db', [ATTR.POOL_SIZE]: 10 }, t0 + 3);
  db.addEvent(EVENT.LOCK_WAIT, { [ATTR.LOCK_ID]: 'orders-db/orders/42', [ATTR.LOCK_MODE]: 'exclusive' }, t0 + 4);
  db.addEvent(EVENT.LOCK_ACQUIRE, { [ATTR.LOCK_ID]: 'orders-db/orders/42' }, t0 + 5);
  db.addEvent(EVENT.LOCK_RELEASE, { [ATTR.LOCK_ID]: 'orders-db/orders/42' }, t0 + 6);
  db.addEvent(EVENT.POOL_CHECKIN, { [ATTR.POOL_NAME]: 'orders-db' }, t0 + 7);
  db.end(t0 + 8);
  const rpc = tracer.startSpan('GET /inventory', { kind: SpanKind.CLIENT, startTime: t0 + 9 }, rootCtx);
  rpc.addEvent(EVENT.RPC_WAIT, { [ATTR.RPC_PEER_SERVICE]: 'inventory' }, t0 + 9);
  rpc.addEvent(EVENT.RPC_DONE, undefined, t0 + 12);
  rpc.end(t0 + 12);
  // Still running: exported as a partial-span snapshot, as an emitter taking part does every second.
  const waiting = tracer.startSpan('reserve stock', { kind: SpanKind.INTERNAL, startTime: t0 + 13 }, rootCtx);
  waiting.setAttribute(ATTR.SPAN_PARTIAL, true);
  waiting.addEvent(EVENT.LOCK_WAIT, { [ATTR.LOCK_ID]: 'inventory/sku-9', [ATTR.LOCK_KIND]: 'advisory' }, t0 + 14);
  root.end(t0 + 20);
  await provider.forceFlush();
  ended = [...exporter.getFinishedSpans()];
  open = waiting as unknown as ReadableSpan; // the SDK's live span is a ReadableSpan with endTime [0, 0]
  allSpans = [...ended, open];

  const logExporter = new InMemoryLogRecordExporter();
  const loggerProvider = new LoggerProvider({
    resource: resourceFromAttributes(RESOURCE),
    processors: [new SimpleLogRecordProcessor({ exporter: logExporter })],
  });
  const logger = loggerProvider.getLogger('waitgraph-decode-test');
  const waitingCtx = trace.setSpan(ROOT_CONTEXT, waiting);
  // Newer OTLP: the top-level event name.
  logger.emit({
    eventName: EVENT.CERT_WAIT,
    timestamp: t0 + 15,
    context: waitingCtx,
    attributes: { [ATTR.CERT_ID]: 'mesh/ca', nested: { a: 1, b: { c: [1, 'x'] } }, raw: new Uint8Array([0, 1, 0xab, 0xff]) },
  });
  // Older emitters: the event.name attribute.
  logger.emit({ timestamp: t0 + 16, context: waitingCtx, attributes: { 'event.name': EVENT.TASK_WAIT, [ATTR.TASK_WAIT_ON]: ['t1', 't2'] } });
  // An ordinary log line: not an event, skipped.
  logger.emit({ timestamp: t0 + 17, context: waitingCtx, body: 'hello', attributes: { 'log.level': 'info' } });
  await loggerProvider.forceFlush();
  logRecords = [...logExporter.getFinishedLogRecords()];
  // `waiting` is never ended: a deadlocked span never is.
  await provider.shutdown();
  await loggerProvider.shutdown();
});

function expectSpanMatches(got: SpanRecord, sdk: ReadableSpan): void {
  const ctx = sdk.spanContext();
  expect(got.traceId).toBe(ctx.traceId);
  expect(got.spanId).toBe(ctx.spanId);
  expect(got.parentSpanId).toBe(sdk.parentSpanContext?.spanId);
  expect('parentSpanId' in got).toBe(true); // always present, undefined for a root (monomorphic shape)
  expect(got.name).toBe(sdk.name);
  expect(got.kind).toBe(sdk.kind + 1);
  expect(got.startTimeUnixNano).toBe(nanos(sdk.startTime));
  expect(got.endTimeUnixNano).toBe(sdk.ended ? nanos(sdk.endTime) : 0);
  expect(got.attributes).toEqual(sdk.attributes);
  expect(got.resource).toEqual(RESOURCE);
  expect(got.events).toEqual(sdk.events.map((e) => ({ name: e.name, timeUnixNano: nanos(e.time), attributes: e.attributes ?? {} })));
  expect(Object.keys(got)).toEqual(['traceId', 'spanId', 'parentSpanId', 'name', 'kind', 'startTimeUnixNano', 'endTimeUnixNano', 'attributes', 'resource', 'events']);
}

function expectAllSpans(batch: DecodedBatch): void {
  expect(batch.logEvents).toEqual([]);
  expect(batch.spans).toHaveLength(allSpans.length);
  for (const sdk of allSpans) {
    const got = batch.spans.find((s) => s.spanId === sdk.spanContext().spanId);
    expect(got, sdk.name).toBeDefined();
    expectSpanMatches(got!, sdk);
  }
}

function expectLogEvents(events: LogEventRecord[]): void {
  const ctx = open.spanContext();
  expect(events).toHaveLength(2);
  const [cert, task] = events;
  expect(cert).toEqual({
    traceId: ctx.traceId,
    spanId: ctx.spanId,
    name: EVENT.CERT_WAIT,
    timeUnixNano: nanos(logRecords[0].hrTime),
    // kvlists become JSON strings, bytes become hex
    attributes: { [ATTR.CERT_ID]: 'mesh/ca', nested: JSON.stringify({ a: 1, b: { c: [1, 'x'] } }), raw: '0001abff' },
    resource: RESOURCE,
  });
  expect(task).toEqual({
    traceId: ctx.traceId,
    spanId: ctx.spanId,
    name: EVENT.TASK_WAIT,
    timeUnixNano: nanos(logRecords[1].hrTime),
    attributes: { [ATTR.TASK_WAIT_ON]: ['t1', 't2'] }, // event.name is the name, not an attribute
    resource: RESOURCE,
  });
}

describe('OTLP traces from the OpenTelemetry JS serializers', () => {
  it('decodes protobuf field by field, the open span as a partial snapshot', () => {
    const bytes = ProtobufTraceSerializer.serializeRequest(allSpans)!;
    const batch = decodeOtlpTracesProto(bytes, 'traces.pb');
    expectAllSpans(batch);
    const partial = batch.spans.find((s) => s.spanId === open.spanContext().spanId)!;
    expect(partial.endTimeUnixNano).toBe(0);
    expect(partial.attributes[ATTR.SPAN_PARTIAL]).toBe(true);
    expect(decodeOtlpProto(bytes)).toEqual(batch);
    expect(decodeBuffer(bytes, 'traces.pb')).toEqual(batch);
  });

  it('decodes JSON text, a parsed object, and JSON Lines alike', () => {
    const bytes = JsonTraceSerializer.serializeRequest(allSpans)!;
    const text = new TextDecoder().decode(bytes);
    expectAllSpans(decodeOtlpJson(text, 'traces.json'));
    expectAllSpans(decodeOtlpJson(JSON.parse(text)));
    expectAllSpans(decodeBuffer(bytes, 'traces.json'));
    // The Collector's file exporter writes one request per line.
    const lines = [JsonTraceSerializer.serializeRequest(ended)!, JsonTraceSerializer.serializeRequest([open])!]
      .map((b) => new TextDecoder().decode(b))
      .join('\n');
    expectAllSpans(decodeOtlpJson(lines + '\n', 'traces.jsonl'));
  });

  it('gives JSON and protobuf the same records', () => {
    const fromProto = decodeOtlpTracesProto(ProtobufTraceSerializer.serializeRequest(allSpans)!);
    const fromJson = decodeOtlpJson(new TextDecoder().decode(JsonTraceSerializer.serializeRequest(allSpans)!));
    expect(fromJson).toEqual(fromProto);
  });

  it('shares one resource object among the spans of one ResourceSpans', () => {
    const batch = decodeOtlpTracesProto(ProtobufTraceSerializer.serializeRequest(allSpans)!);
    expect(new Set(batch.spans.map((s) => s.resource)).size).toBe(1);
  });
});

describe('OTLP logs from the OpenTelemetry JS serializers', () => {
  it('decodes protobuf: event records become LogEventRecords of their span', () => {
    const bytes = ProtobufLogsSerializer.serializeRequest(logRecords)!;
    const batch = decodeOtlpLogsProto(bytes, 'logs.pb');
    expect(batch.spans).toEqual([]);
    expectLogEvents(batch.logEvents);
    // Told from traces by wire shape alone.
    expect(decodeOtlpProto(bytes)).toEqual(batch);
    expect(decodeBuffer(bytes, 'logs.pb')).toEqual(batch);
  });

  it('decodes JSON the same way', () => {
    const bytes = JsonLogsSerializer.serializeRequest(logRecords)!;
    expectLogEvents(decodeOtlpJson(new TextDecoder().decode(bytes), 'logs.json').logEvents);
    expectLogEvents(decodeBuffer(bytes, 'logs.json').logEvents);
  });
});
