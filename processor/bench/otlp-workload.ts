/**
 * A realistic, deterministic OTLP trace workload for benchmarks: batches of SDK spans (one resource per
 * batch, as one exporter flush), serialized by the real OpenTelemetry JS serializers of
 * `@opentelemetry/otlp-transformer`. Shared by the decode benchmark and the engine benchmark so both
 * measure the same input.
 *
 * Shape per span: 8-15 attributes drawn from common semantic conventions; 1 in 10 spans (by default)
 * carries 2-4 wait events (lock or pool wait/acquire/release) with their attributes; 1 in 100 is an open
 * span exported as a partial snapshot (`span.partial = true`, no end time). Traces are 5-40 spans deep and
 * wide, a SERVER root with INTERNAL and CLIENT descendants.
 */
import { SpanKind, SpanStatusCode, TraceFlags, type Attributes, type HrTime, type SpanContext } from '@opentelemetry/api';
import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import type { ReadableSpan, TimedEvent } from '@opentelemetry/sdk-trace';
import { ATTR, EVENT } from '../../schemas/index.js';

/** Options of the workload generator. */
export interface OtlpWorkloadOptions {
  /** Total spans. Default 100_000. */
  spans?: number;
  /** Spans per export request. Default 500. */
  batchSize?: number;
  /** One span in this many carries wait events. Default 10. */
  waitEveryNth?: number;
  /** One span in this many is an open span exported as a partial snapshot. Default 100. */
  partialEveryNth?: number;
  /** Distinct services (resources). Default 20. */
  services?: number;
  /** PRNG seed: the same seed gives the same workload. Default 1. */
  seed?: number;
  /** When the first batch's spans begin, unix ns. Default 1.7e18 (November 2023). */
  startNs?: number;
  /** How much later each batch's spans begin than the last's, ns. Default 1e9. */
  stepNs?: number;
  /**
   * Batches after a partial snapshot's batch that its span ends in, and is sent again, ended: as a live
   * emitter's in-progress span is later exported whole. A multiple of `services` keeps it in its service's
   * batch. Spans whose end would fall after the last batch are not made partial. Default 0: never (a
   * partial snapshot stays the last word on its span).
   */
  partialsEndAfter?: number;
  /** Serialization: OTLP protobuf or OTLP JSON. Default `protobuf`. */
  encoding?: 'protobuf' | 'json';
}

/** A generated workload. */
export interface OtlpWorkload {
  /** One serialized ExportTraceServiceRequest per batch. */
  batches: Uint8Array[];
  /** Spans in all batches. */
  spanCount: number;
  /** Span events in all batches. */
  eventCount: number;
  /** Open spans exported as partial snapshots. */
  partialCount: number;
  /** Total serialized bytes. */
  bytes: number;
}

/** Deterministic PRNG (mulberry32). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const HEX = '0123456789abcdef';
function hexId(rand: () => number, digits: number): string {
  let s = '';
  for (let i = 0; i < digits; i++) s += HEX[(rand() * 16) | 0];
  return s[0] === '0' ? '1' + s.slice(1) : s;
}

function hr(nanos: number): HrTime {
  const s = Math.floor(nanos / 1e9);
  return [s, Math.round(nanos - s * 1e9)];
}

const METHODS = ['GET', 'POST', 'PUT', 'DELETE'];
const ROUTES = ['/orders/{id}', '/orders', '/payments/{id}/capture', '/inventory/reserve', '/users/{id}', '/cart/checkout'];
const TABLES = ['orders', 'payments', 'inventory', 'users', 'carts', 'shipments'];
const POOLS = ['orders-db', 'payments-db', 'http-workers', 'kafka-producer', 'redis'];

/** Candidate span attributes; each span takes 8-15 of them. */
const ATTRIBUTE_MAKERS: ((r: () => number, i: number) => [string, string | number | boolean])[] = [
  (r) => ['http.request.method', METHODS[(r() * METHODS.length) | 0]],
  (r) => ['http.route', ROUTES[(r() * ROUTES.length) | 0]],
  (r) => ['url.path', `/orders/${(r() * 100000) | 0}`],
  (r) => ['http.response.status_code', r() < 0.95 ? 200 : 503],
  (r) => ['server.address', `svc-${(r() * 20) | 0}.prod.internal`],
  () => ['server.port', 8080],
  () => ['network.protocol.version', '1.1'],
  (r) => ['client.address', `10.0.${(r() * 255) | 0}.${(r() * 255) | 0}`],
  () => ['db.system', 'postgresql'],
  (r) => ['db.query.text', `SELECT id, status, total FROM ${TABLES[(r() * TABLES.length) | 0]} WHERE id = $1 FOR UPDATE`],
  (r) => ['db.collection.name', TABLES[(r() * TABLES.length) | 0]],
  (r) => [ATTR.THREAD_ID, ((r() * 64) | 0) + 1],
  (r) => [ATTR.TASK_ID, `worker-${(r() * 64) | 0}`],
  (r) => ['code.function.name', `handle${TABLES[(r() * TABLES.length) | 0]}`],
  (r) => ['user_agent.original', r() < 0.5 ? 'okhttp/4.12.0' : 'Go-http-client/1.1'],
  (r) => ['app.order.total', Math.round(r() * 100000) / 100],
  (r) => ['app.cache.hit', r() < 0.7],
  (r) => ['messaging.system', r() < 0.5 ? 'kafka' : 'rabbitmq'],
];

function spanAttributes(rand: () => number, i: number): Attributes {
  const n = 8 + ((rand() * 8) | 0);
  const attrs: Attributes = {};
  const offset = (rand() * ATTRIBUTE_MAKERS.length) | 0;
  for (let k = 0; k < n; k++) {
    const [key, value] = ATTRIBUTE_MAKERS[(offset + k) % ATTRIBUTE_MAKERS.length](rand, i);
    attrs[key] = value;
  }
  return attrs;
}

/**
 * 2-4 wait events over one lock or one pool: wait, take, give back, wait again (for another lock, or the
 * pool once more; that wait ends with the span). An open span (a partial snapshot) may stop after the
 * take, still holding; an ended one gives back what it took, as a thread does: a span of two takes without
 * waiting first.
 */
function waitEvents(rand: () => number, start: number, duration: number, open: boolean): TimedEvent[] {
  const count = 2 + ((rand() * 3) | 0);
  const pick = (all: TimedEvent[]) => (open || count !== 2 ? all.slice(0, count) : all.slice(1, 3));
  const t = (f: number) => hr(start + duration * f);
  if (rand() < 0.5) {
    const lock = { [ATTR.LOCK_ID]: `orders-db/${TABLES[(rand() * TABLES.length) | 0]}/${(rand() * 1000) | 0}`, [ATTR.LOCK_MODE]: 'exclusive', [ATTR.LOCK_KIND]: 'row' };
    const all: TimedEvent[] = [
      { name: EVENT.LOCK_WAIT, time: t(0.1), attributes: lock },
      { name: EVENT.LOCK_ACQUIRE, time: t(0.3), attributes: lock },
      { name: EVENT.LOCK_RELEASE, time: t(0.8), attributes: { [ATTR.LOCK_ID]: lock[ATTR.LOCK_ID] } },
      { name: EVENT.LOCK_WAIT, time: t(0.85), attributes: { ...lock, [ATTR.LOCK_ID]: `${lock[ATTR.LOCK_ID]}-b` } },
    ];
    return pick(all);
  }
  const pool = { [ATTR.POOL_NAME]: POOLS[(rand() * POOLS.length) | 0], [ATTR.POOL_SIZE]: 10 };
  const all: TimedEvent[] = [
    { name: EVENT.POOL_WAIT, time: t(0.05), attributes: pool },
    { name: EVENT.POOL_CHECKOUT, time: t(0.2), attributes: pool },
    { name: EVENT.POOL_CHECKIN, time: t(0.9), attributes: { [ATTR.POOL_NAME]: pool[ATTR.POOL_NAME] } },
    { name: EVENT.POOL_WAIT, time: t(0.95), attributes: pool },
  ];
  return pick(all);
}

/**
 * Generates the workload as SDK ReadableSpans, one array per export batch (all spans of a batch share one
 * Resource object, as the SDK does).
 */
export function generateSpanBatches(options: OtlpWorkloadOptions = {}): ReadableSpan[][] {
  const total = options.spans ?? 100_000;
  const batchSize = options.batchSize ?? 500;
  const waitEvery = options.waitEveryNth ?? 10;
  const partialEveryNth = options.partialEveryNth ?? 100;
  const serviceCount = options.services ?? 20;
  const rand = prng(options.seed ?? 1);
  const resources: Resource[] = [];
  for (let s = 0; s < serviceCount; s++) {
    resources.push(
      resourceFromAttributes({
        [ATTR.SERVICE_NAME]: `service-${s}`,
        [ATTR.SERVICE_INSTANCE_ID]: `service-${s}-${hexId(rand, 8)}`,
        'host.name': `node-${s % 7}.cluster.local`,
        'deployment.environment.name': 'prod',
        'telemetry.sdk.language': 'nodejs',
        'telemetry.sdk.name': 'opentelemetry',
        'telemetry.sdk.version': '2.0.0',
      }),
    );
  }
  const scope = { name: 'waitgraph-bench', version: '0.1.0' };
  const endAfter = options.partialsEndAfter ?? 0;
  if (endAfter % serviceCount !== 0) throw new Error('partialsEndAfter must be a multiple of services');
  const lastBatch = Math.ceil(total / batchSize) - 1;
  /** The ended versions of partial snapshots, by the batch they go in. */
  const ends = new Map<number, ReadableSpan[]>();
  const batches: ReadableSpan[][] = [];
  let made = 0;
  let clock = options.startNs ?? 1_700_000_000_000_000_000;
  const step = options.stepNs ?? 1e9;
  while (made < total) {
    const resource = resources[batches.length % serviceCount];
    const batch: ReadableSpan[] = [];
    const n = Math.min(batchSize, total - made);
    while (batch.length < n) {
      const traceId = hexId(rand, 32);
      const traceSpans = Math.min(n - batch.length, 5 + ((rand() * 36) | 0));
      const ids: string[] = [];
      for (let i = 0; i < traceSpans; i++) {
        const spanId = hexId(rand, 16);
        const parent = i === 0 ? undefined : ids[(rand() * i) | 0];
        ids.push(spanId);
        const index = made + batch.length;
        const start = clock + rand() * 5e8;
        const duration = 1e5 + rand() * 2e8;
        const endsIn = batches.length + endAfter;
        const open = index % partialEveryNth === partialEveryNth - 1 && (endAfter === 0 || endsIn <= lastBatch);
        const attributes = spanAttributes(rand, index);
        if (open) attributes[ATTR.SPAN_PARTIAL] = true;
        const events = index % waitEvery === 0 ? waitEvents(rand, start, duration, open) : [];
        const ctx: SpanContext = { traceId, spanId, traceFlags: TraceFlags.SAMPLED };
        const parentCtx: SpanContext | undefined = parent ? { traceId, spanId: parent, traceFlags: TraceFlags.SAMPLED } : undefined;
        const s: ReadableSpan = {
          name: i === 0 ? `${METHODS[(rand() * 4) | 0]} ${ROUTES[(rand() * ROUTES.length) | 0]}` : `span-${i % 9}`,
          kind: i === 0 ? SpanKind.SERVER : rand() < 0.3 ? SpanKind.CLIENT : SpanKind.INTERNAL,
          spanContext: () => ctx,
          parentSpanContext: parentCtx,
          startTime: hr(start),
          endTime: open ? [0, 0] : hr(start + duration),
          status: { code: SpanStatusCode.UNSET },
          attributes,
          links: [],
          events,
          duration: open ? [0, 0] : hr(duration),
          ended: !open,
          resource,
          instrumentationScope: scope,
          droppedAttributesCount: 0,
          droppedEventsCount: 0,
          droppedLinksCount: 0,
        };
        batch.push(s);
        if (open && endAfter > 0) {
          const { [ATTR.SPAN_PARTIAL]: _partial, ...whole } = attributes;
          const ended: ReadableSpan = { ...s, attributes: whole, endTime: hr(start + duration), duration: hr(duration), ended: true };
          const list = ends.get(endsIn);
          if (list === undefined) ends.set(endsIn, [ended]);
          else list.push(ended);
        }
      }
    }
    made += batch.length;
    batch.push(...(ends.get(batches.length) ?? []));
    ends.delete(batches.length);
    clock += step;
    batches.push(batch);
  }
  return batches;
}

/** Generates the workload and serializes each batch as an OTLP ExportTraceServiceRequest. */
export function buildWorkload(options: OtlpWorkloadOptions = {}): OtlpWorkload {
  const serializer = (options.encoding ?? 'protobuf') === 'json' ? JsonTraceSerializer : ProtobufTraceSerializer;
  const out: Uint8Array[] = [];
  let spanCount = 0;
  let eventCount = 0;
  let partialCount = 0;
  let bytes = 0;
  for (const batch of generateSpanBatches(options)) {
    const data = serializer.serializeRequest(batch);
    if (!data) throw new Error('otlp-transformer returned no bytes');
    out.push(data);
    bytes += data.length;
    spanCount += batch.length;
    for (const s of batch) {
      eventCount += s.events.length;
      if (!s.ended) partialCount++;
    }
  }
  return { batches: out, spanCount, eventCount, partialCount, bytes };
}

/** Where a batch's trace ids (16 bytes each) and times (fixed64) are: see `repeatBatch`. */
interface BatchFields {
  traceIds: number[];
  times: number[];
}
const batchFields = new WeakMap<Uint8Array, BatchFields>();

/**
 * Finds a serialized ExportTraceServiceRequest's trace ids and times: ResourceSpans (1) > ScopeSpans (2) >
 * Span (2) > trace_id (1), start and end time (7, 8), and each Event (11) > time (1).
 */
function fieldsOf(bytes: Uint8Array): BatchFields {
  const out: BatchFields = { traceIds: [], times: [] };
  let pos = 0;
  const varint = (): number => {
    let v = 0;
    for (let shift = 0; ; shift += 7) {
      const b = bytes[pos++];
      v += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return v;
    }
  };
  // Calls `field(number, wireType, end of its value)` for each field of the message ending at `end`.
  const walk = (end: number, field: (n: number, wire: number, valueEnd: number) => void): void => {
    while (pos < end) {
      const tag = varint();
      const wire = tag & 7;
      const n = Math.floor(tag / 8);
      let valueEnd: number;
      if (wire === 0) {
        varint();
        continue;
      } else if (wire === 1) valueEnd = pos + 8;
      else if (wire === 5) valueEnd = pos + 4;
      else if (wire === 2) valueEnd = varint() + pos;
      else throw new Error(`repeatBatch: wire type ${wire} at ${pos}`);
      field(n, wire, valueEnd);
      pos = valueEnd;
    }
  };
  walk(bytes.length, (n, wire, end) => {
    if (n !== 1 || wire !== 2) return;
    walk(end, (n2, w2, end2) => {
      if (n2 !== 2 || w2 !== 2) return;
      walk(end2, (n3, w3, end3) => {
        if (n3 !== 2 || w3 !== 2) return;
        walk(end3, (f, w, fEnd) => {
          if (f === 1 && w === 2 && fEnd - pos === 16) out.traceIds.push(pos);
          else if ((f === 7 || f === 8) && w === 1) out.times.push(pos);
          else if (f === 11 && w === 2) walk(fEnd, (e, ew) => void (e === 1 && ew === 1 && out.times.push(pos)));
        });
      });
    });
  });
  return out;
}

/**
 * The `k`-th repetition of a workload batch: a copy with every trace id changed (its last 4 bytes XORed
 * with `k`) and every time but the unset ones moved `k * shiftNs` later. A paced load can so run longer
 * than the spans built for it, with new spans, not the same ones again (which a detector takes in as
 * duplicates, far more cheaply). Repetition 0 is the batch itself.
 */
export function repeatBatch(bytes: Uint8Array, k: number, shiftNs: number): Uint8Array {
  if (k === 0) return bytes;
  let fields = batchFields.get(bytes);
  if (fields === undefined) batchFields.set(bytes, (fields = fieldsOf(bytes)));
  const copy = bytes.slice();
  const view = new DataView(copy.buffer, copy.byteOffset, copy.byteLength);
  for (const p of fields.traceIds) view.setUint32(p + 12, view.getUint32(p + 12) ^ k);
  const shift = BigInt(k) * BigInt(Math.round(shiftNs));
  for (const p of fields.times) {
    const t = view.getBigUint64(p, true);
    if (t !== 0n) view.setBigUint64(p, t + shift, true);
  }
  return copy;
}
