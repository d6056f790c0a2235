/**
 * The deployment pipeline, for real: services' OTel SDKs export OTLP to waitgraph's OpenTelemetry
 * Collector (built with the builder, deploy/otelcol.yaml), which forwards every span to Jaeger and to
 * Kafka's `otlp_spans`, and logs to `otlp_logs`. Asserts what a user sees: the trace in Jaeger's HTTP API
 * (the API behind the UI and behind waitgraph's trace links) and the OTLP records on the broker, decoded
 * by the processor's own decoder.
 */
import { context, trace, SpanKind, type Span } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeOtlpLogsProto, decodeOtlpTracesProto } from '../../processor/src/decode/otlp-proto.js';
import type { DecodedBatch } from '../../processor/src/model/span.js';
import { ATTR, EVENT } from '../../schemas/index.js';
import { serviceOf, waitForTrace, type JaegerTrace } from '../support/jaeger.js';
import { SERVER_START_TIMEOUT_MS } from '../support/servers.js';
import { createTopic, ensureKafka, testKafkaClient, type TestKafka } from '../support/kafka.js';
import { ensureCollector, type TestCollector } from '../support/otelcol.js';

/** How fast spans must pass through the Collector: waitgraph promises alerts within 5 s. */
const PIPELINE_BUDGET_MS = 5_000;

/** What `sendCheckoutTrace` sent. */
interface SentTrace {
  traceId: string;
  /** The unique suffix of this trace's service names, so runs and test files never mix. */
  tag: string;
  sentAt: number;
}

/**
 * Two services, each with its own SDK TracerProvider, export one distributed trace through the
 * Collector: `orders` serves POST /checkout, holds a row lock and calls `payments`, whose server span is
 * the child of that client span and waits for the same row.
 */
async function sendCheckoutTrace(tracesUrl: string): Promise<SentTrace> {
  const tag = randomBytes(4).toString('hex');
  const providers = ['orders', 'payments'].map(
    (service) =>
      new TracerProvider({
        resource: resourceFromAttributes({ [ATTR.SERVICE_NAME]: `${service}-${tag}` }),
        spanProcessors: [new SimpleSpanProcessor({ exporter: new OTLPTraceExporter({ url: tracesUrl }) })],
      }),
  );
  const [orders, payments] = providers.map((p) => p.getTracer('waitgraph-pipeline-test'));
  const lockId = `orders-db/orders/${tag}`;

  const checkout: Span = orders.startSpan('POST /checkout', { kind: SpanKind.SERVER });
  checkout.addEvent(EVENT.LOCK_ACQUIRE, { [ATTR.LOCK_ID]: lockId });
  const call = orders.startSpan('POST /pay', { kind: SpanKind.CLIENT }, trace.setSpan(context.active(), checkout));
  const pay = payments.startSpan('POST /pay', { kind: SpanKind.SERVER }, trace.setSpan(context.active(), call));
  pay.addEvent(EVENT.LOCK_WAIT, { [ATTR.LOCK_ID]: lockId });
  pay.addEvent(EVENT.LOCK_TIMEOUT, { [ATTR.LOCK_ID]: lockId });
  pay.end();
  call.end();
  checkout.addEvent(EVENT.LOCK_RELEASE, { [ATTR.LOCK_ID]: lockId });
  checkout.end();

  await Promise.all(providers.map((p) => p.forceFlush()));
  const sentAt = Date.now();
  await Promise.all(providers.map((p) => p.shutdown()));
  return { traceId: checkout.spanContext().traceId, tag, sentAt };
}

/** The spans of a Jaeger trace as `service: span name` lines, sorted. */
function jaegerSpanLines(t: JaegerTrace): string[] {
  return t.spans.map((s) => `${serviceOf(t, s)}: ${s.operationName}`).sort();
}

describe('OTLP into the Collector, out to Jaeger', () => {
  let collector: TestCollector;

  beforeAll(async () => {
    collector = await ensureCollector();
  }, SERVER_START_TIMEOUT_MS);

  it('shows a two-service trace in Jaeger by its trace id, with services, span names, parents and wait events', async () => {
    const sent = await sendCheckoutTrace(collector.tracesUrl);

    const t = await waitForTrace(collector.jaeger.url, sent.traceId, {
      timeoutMs: PIPELINE_BUDGET_MS,
      complete: (x) => x.spans.length === 3,
    });

    expect(t.traceID).toBe(sent.traceId);
    expect(jaegerSpanLines(t)).toEqual([
      `orders-${sent.tag}: POST /checkout`,
      `orders-${sent.tag}: POST /pay`,
      `payments-${sent.tag}: POST /pay`,
    ]);
    const byKey = new Map(t.spans.map((s) => [`${serviceOf(t, s)} ${s.operationName}`, s]));
    const checkout = byKey.get(`orders-${sent.tag} POST /checkout`)!;
    const call = byKey.get(`orders-${sent.tag} POST /pay`)!;
    const pay = byKey.get(`payments-${sent.tag} POST /pay`)!;
    expect(checkout.references).toEqual([]);
    expect(call.references).toEqual([{ refType: 'CHILD_OF', traceID: sent.traceId, spanID: checkout.spanID }]);
    expect(pay.references).toEqual([{ refType: 'CHILD_OF', traceID: sent.traceId, spanID: call.spanID }]);
    // Span events become Jaeger span logs, with the event name in the `event` field.
    const events = pay.logs.map((l) => l.fields.find((f) => f.key === 'event')?.value);
    expect(events).toEqual([EVENT.LOCK_WAIT, EVENT.LOCK_TIMEOUT]);
    expect(pay.logs[0].fields).toContainEqual({ key: ATTR.LOCK_ID, type: 'string', value: `orders-db/orders/${sent.tag}` });
  });

  it('lists the services that sent spans in Jaeger', async () => {
    const sent = await sendCheckoutTrace(collector.tracesUrl);
    await waitForTrace(collector.jaeger.url, sent.traceId, { timeoutMs: PIPELINE_BUDGET_MS, complete: (x) => x.spans.length === 3 });

    const res = await fetch(`${collector.jaeger.url}/api/services`);
    const services = ((await res.json()) as { data: string[] }).data;
    expect(services).toEqual(expect.arrayContaining([`orders-${sent.tag}`, `payments-${sent.tag}`]));
  });

  it('answers 404 for a trace that was never sent', async () => {
    const res = await fetch(`${collector.jaeger.url}/api/traces/${randomBytes(16).toString('hex')}`);
    expect(res.status).toBe(404);
  });
});

describe('OTLP into the Collector, out to Kafka', () => {
  let kafka: TestKafka;
  let collector: TestCollector;
  const stops: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    kafka = await ensureKafka();
    // Created up front with the partition count auto-creation would give, so the consumer can
    // subscribe before the first record; a no-op when another test file created them first.
    await createTopic(kafka.brokers, 'otlp_spans', 3);
    await createTopic(kafka.brokers, 'otlp_logs', 3);
    collector = await ensureCollector({ kafkaBootstrap: kafka.bootstrap });
  }, SERVER_START_TIMEOUT_MS);

  afterAll(async () => {
    await Promise.all(stops.map((stop) => stop()));
  });

  /** A record read back from the broker. */
  interface Consumed {
    key: string;
    value: Buffer;
    partition: number;
  }

  /**
   * Reads `topic` from its start, keeps the records that `match` accepts, and resolves with them once
   * `enough` holds for what it kept.
   */
  async function readRecords(
    topic: string,
    match: (r: Consumed) => boolean,
    enough: (kept: Consumed[]) => boolean,
  ): Promise<Consumed[]> {
    const consumer = testKafkaClient(kafka.brokers).consumer({ groupId: `pipeline-test-${randomBytes(6).toString('hex')}` });
    stops.push(() => consumer.disconnect());
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const kept: Consumed[] = [];
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${topic}: records of this test incomplete after ${PIPELINE_BUDGET_MS} ms (kept ${kept.length})`)),
        PIPELINE_BUDGET_MS,
      );
      consumer
        .run({
          eachMessage: async ({ partition, message }) => {
            if (!message.value) return;
            const r = { key: message.key?.toString() ?? '', value: message.value, partition };
            if (!match(r)) return;
            kept.push(r);
            if (enough(kept)) {
              clearTimeout(timer);
              resolve(kept);
            }
          },
        })
        .catch(reject);
    });
  }

  it('produces the spans to otlp_spans as OTLP protobuf, keyed by trace id, and still to Jaeger', async () => {
    const sent = await sendCheckoutTrace(collector.tracesUrl);
    // partition_traces_by_id: every record is keyed by the hex trace id, so a trace's spans share a
    // partition (the SDKs exported them in several requests, which may land in several records).
    const spanCount = (rs: Consumed[]) => rs.reduce((n, r) => n + decodeOtlpTracesProto(r.value, 'otlp_spans').spans.length, 0);
    const records = await readRecords('otlp_spans', (r) => r.key === sent.traceId, (rs) => spanCount(rs) >= 3);
    expect(new Set(records.map((r) => r.partition)).size).toBe(1);

    const batch: DecodedBatch = {
      spans: records.flatMap((r) => decodeOtlpTracesProto(r.value, 'otlp_spans').spans),
      logEvents: [],
    };
    const lines = batch.spans.map((s) => `${s.resource[ATTR.SERVICE_NAME]}: ${s.name}`).sort();
    expect(lines).toEqual([`orders-${sent.tag}: POST /checkout`, `orders-${sent.tag}: POST /pay`, `payments-${sent.tag}: POST /pay`]);
    expect(new Set(batch.spans.map((s) => s.traceId))).toEqual(new Set([sent.traceId]));
    const pay = batch.spans.find((s) => s.resource[ATTR.SERVICE_NAME] === `payments-${sent.tag}`)!;
    expect(pay.events.map((e) => e.name)).toEqual([EVENT.LOCK_WAIT, EVENT.LOCK_TIMEOUT]);
    expect(pay.events[0].attributes[ATTR.LOCK_ID]).toBe(`orders-db/orders/${sent.tag}`);

    const t = await waitForTrace(collector.jaeger.url, sent.traceId, { timeoutMs: PIPELINE_BUDGET_MS, complete: (x) => x.spans.length === 3 });
    expect(jaegerSpanLines(t)).toEqual(lines);
  });

  it('produces wait events sent as OTLP logs to otlp_logs', async () => {
    const traceId = randomBytes(16).toString('hex');
    const spanId = randomBytes(8).toString('hex');
    const lockId = `orders-db/orders/${traceId.slice(0, 8)}`;
    const nowNs = `${BigInt(Date.now()) * 1_000_000n}`;
    // OTLP/JSON, as a non-SDK emitter would post it; the Collector re-encodes it as protobuf for Kafka.
    const body = {
      resourceLogs: [
        {
          resource: { attributes: [{ key: ATTR.SERVICE_NAME, value: { stringValue: 'orders' } }] },
          scopeLogs: [
            {
              logRecords: [
                {
                  timeUnixNano: nowNs,
                  eventName: EVENT.LOCK_WAIT,
                  traceId,
                  spanId,
                  attributes: [{ key: ATTR.LOCK_ID, value: { stringValue: lockId } }],
                },
              ],
            },
          ],
        },
      ],
    };
    const res = await fetch(collector.logsUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect(res.status).toBe(200);

    // otlp_logs is not keyed: read on until this test's record turns up.
    const ofThisTest = (r: Consumed) => decodeOtlpLogsProto(r.value, 'otlp_logs').logEvents.filter((e) => e.traceId === traceId);
    const [record] = await readRecords('otlp_logs', (r) => ofThisTest(r).length > 0, (rs) => rs.length > 0);
    const ours = ofThisTest(record);
    expect(ours).toHaveLength(1);
    expect(ours[0]).toMatchObject({ name: EVENT.LOCK_WAIT, spanId, attributes: { [ATTR.LOCK_ID]: lockId }, resource: { [ATTR.SERVICE_NAME]: 'orders' } });
  });
});
