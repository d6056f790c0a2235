/**
 * The Kafka source on a real broker: OTLP messages as the Collector's kafka exporter writes them (one span
 * or a whole request per message, keyed by trace id or not), consumed in a group, applied before their
 * offsets are committed; poison messages dead-lettered while the stream goes on.
 */
import type { Kafka, Producer } from 'kafkajs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WaitgraphError } from '../../processor/src/errors.js';
import {
  DEAD_LETTER_HEADERS,
  KafkaSource,
  ProcessorMetrics,
  silentLogger,
  traceIdFromKey,
  type DecodedMessage,
  type KafkaSourceOptions,
} from '../../processor/src/io/index.js';
import type { DecodedBatch } from '../../processor/src/model/span.js';
import { kafkaWithProducer, uniqueTopic, type TestKafka } from '../support/kafka.js';
import { committedOffsets, decodeMessage, endOffsets, readTopic, recordingLogger, waitFor } from './kafka-helpers.js';
import { makeSpans, tracesJson, tracesProto, waitEventLog } from './otlp-payloads.js';

let broker: TestKafka;
let kafka: Kafka;
let producer: Producer;
const sources: KafkaSource<unknown>[] = [];

beforeAll(async () => {
  ({ broker, kafka, producer } = await kafkaWithProducer());
});
afterAll(async () => {
  await producer?.disconnect();
});
afterEach(async () => {
  await Promise.all(sources.splice(0).map((s) => s.shutdown()));
});

function startSource<T>(options: Omit<KafkaSourceOptions<T>, 'brokers'>): KafkaSource<T> {
  const source = new KafkaSource<T>({ brokers: broker.brokers, logger: silentLogger, maxWaitTimeMs: 100, ...options });
  sources.push(source as KafkaSource<unknown>);
  return source;
}

describe('Kafka source', () => {
  it('decodes protobuf messages, single spans and whole batches, and commits only after apply resolves', async () => {
    const topic = uniqueTopic('otlp_spans');
    await broker.createTopic(topic, 3);
    const batch = await makeSpans(5, 'orders');
    const single = await makeSpans(2, 'payments');
    const traceId = single[0]!.spanContext().traceId;
    // A whole request unkeyed, and two single-span messages keyed by trace id (partition_traces_by_id).
    await producer.send({
      topic,
      messages: [
        { value: Buffer.from(tracesProto(batch)) },
        { key: traceId, value: Buffer.from(tracesProto([single[0]!])) },
        { key: traceId, value: Buffer.from(tracesProto([single[1]!])) },
      ],
    });

    const groupId = uniqueTopic('group');
    const applied: DecodedMessage<DecodedBatch>[] = [];
    let release!: () => void;
    const gate = new Promise<void>((ok) => (release = ok));
    let calls = 0;
    const metrics = new ProcessorMetrics({ processMetrics: false });
    const source = startSource<DecodedBatch>({
      topics: [{ topic, signal: 'traces' }],
      groupId,
      metrics,
      decode: decodeMessage,
      apply: async (messages) => {
        // The first batch is held: nothing may be committed while it is.
        if (calls++ === 0) await gate;
        applied.push(...messages);
      },
    });
    await source.start();
    await waitFor('the first apply call', () => calls === 1);
    await new Promise((ok) => setTimeout(ok, 500));
    expect(Object.values(await committedOffsets(kafka, groupId, topic))).toEqual(['-1', '-1', '-1']);
    expect(calls).toBe(1); // apply is never called concurrently

    release();
    const ends = await endOffsets(kafka, topic);
    await waitFor('all offsets committed', async () => {
      const committed = await committedOffsets(kafka, groupId, topic);
      return Object.entries(ends).every(([p, end]) => end === '0' || committed[Number(p)] === end);
    });
    expect(applied).toHaveLength(3);
    const spanNames = applied.flatMap((m) => m.value.spans.map((s) => `${s.resource['service.name']}:${s.name}`)).sort();
    expect(spanNames).toEqual(['orders:work 0', 'orders:work 1', 'orders:work 2', 'orders:work 3', 'orders:work 4', 'payments:work 0', 'payments:work 1']);
    const keyed = applied.filter((m) => m.message.key !== null);
    expect(keyed.map((m) => m.message.traceId)).toEqual([traceId, traceId]);
    expect(keyed.map((m) => m.value.spans[0]!.traceId)).toEqual([traceId, traceId]);
    // Messages of one key are one partition's, in offset order.
    expect(keyed[0]!.message.partition).toBe(keyed[1]!.message.partition);
    expect(BigInt(keyed[0]!.message.offset)).toBeLessThan(BigInt(keyed[1]!.message.offset));
    expect(applied.every((m) => m.message.signal === 'traces' && m.message.encoding === 'otlp_proto')).toBe(true);
    const lag = (await metrics.text()).split('\n').filter((l) => l.startsWith(`waitgraph_consumer_lag{topic="${topic}"`));
    expect(lag.length).toBeGreaterThan(0);
    expect(lag.every((l) => l.endsWith(' 0'))).toBe(true);
  });

  it('commits applied offsets only once beforeCommit resolves, without holding the next batches back', async () => {
    const topic = uniqueTopic('otlp_spans');
    await broker.createTopic(topic);
    await producer.send({ topic, messages: [{ value: Buffer.from(tracesProto(await makeSpans(1, 'first'))) }] });
    const groupId = uniqueTopic('group');
    const applied: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((ok) => (release = ok));
    const source = startSource<DecodedBatch>({
      topics: [{ topic, signal: 'traces' }],
      groupId,
      decode: decodeMessage,
      apply: async (messages) => void applied.push(...messages.map((m) => m.value.spans[0]!.resource['service.name'] as string)),
      beforeCommit: () => gate,
    });
    await source.start();
    await waitFor('the first batch applied', () => applied.length === 1);
    // The next batch is applied while the first one's commit waits.
    await producer.send({ topic, messages: [{ value: Buffer.from(tracesProto(await makeSpans(1, 'second'))) }] });
    await waitFor('the second batch applied', () => applied.length === 2);
    expect((await committedOffsets(kafka, groupId, topic))[0]).toBe('-1');
    release();
    await waitFor('both committed', async () => (await committedOffsets(kafka, groupId, topic))[0] === '2');
    expect(applied).toEqual(['first', 'second']);
  });

  it('reads otlp_json traces and otlp_proto logs from their own topics', async () => {
    const spansTopic = uniqueTopic('otlp_spans');
    const logsTopic = uniqueTopic('otlp_logs');
    await Promise.all([broker.createTopic(spansTopic), broker.createTopic(logsTopic)]);
    await producer.send({ topic: spansTopic, messages: [{ value: Buffer.from(tracesJson(await makeSpans(2))) }] });
    await producer.send({ topic: logsTopic, messages: [{ value: Buffer.from(await waitEventLog('proto')) }] });
    const applied: DecodedMessage<DecodedBatch>[] = [];
    const source = startSource<DecodedBatch>({
      topics: [
        { topic: spansTopic, signal: 'traces', encoding: 'otlp_json' },
        { topic: logsTopic, signal: 'logs' },
      ],
      groupId: uniqueTopic('group'),
      decode: decodeMessage,
      apply: async (messages) => void applied.push(...messages),
    });
    await source.start();
    await waitFor('both messages', () => applied.length === 2);
    const bySignal = Object.fromEntries(applied.map((m) => [m.message.signal, m]));
    expect(bySignal.traces!.message.encoding).toBe('otlp_json');
    expect(bySignal.traces!.value.spans).toHaveLength(2);
    expect(bySignal.logs!.message.encoding).toBe('otlp_proto');
    expect(bySignal.logs!.value.logEvents.map((e) => e.name)).toEqual(['lock.wait']);
  });

  it('sends a poison message to the dead-letter topic, logs it once, and applies the messages after it', async () => {
    const topic = uniqueTopic('otlp_spans');
    const deadLetterTopic = uniqueTopic('deadletter');
    await Promise.all([broker.createTopic(topic), broker.createTopic(deadLetterTopic)]);
    const garbage = Buffer.from('\x0a\xff\xff\xff\xff\x0fthis is not an ExportTraceServiceRequest');
    await producer.send({
      topic,
      messages: [
        { value: Buffer.from(tracesProto(await makeSpans(1, 'before'))) },
        { key: 'k1', value: garbage, headers: { origin: 'test' } },
        { value: Buffer.from('also not protobuf') },
        { value: Buffer.from(tracesProto(await makeSpans(1, 'after'))) },
      ],
    });
    const groupId = uniqueTopic('group');
    const metrics = new ProcessorMetrics({ processMetrics: false });
    const logger = recordingLogger();
    const applied: DecodedMessage<DecodedBatch>[] = [];
    const source = startSource<DecodedBatch>({
      topics: [{ topic, signal: 'traces' }],
      groupId,
      deadLetterTopic,
      metrics,
      logger,
      decode: decodeMessage,
      apply: async (messages) => void applied.push(...messages),
    });
    await source.start();
    await waitFor('committed past the poison', async () => (await committedOffsets(kafka, groupId, topic))[0] === '4');

    expect(applied.map((m) => [m.message.offset, m.value.spans[0]!.resource['service.name']])).toEqual([
      ['0', 'before'],
      ['3', 'after'],
    ]);
    expect(source.poisonMessages).toBe(2);
    expect(await metrics.text()).toContain('waitgraph_bad_input_total{reason="decode"} 2');

    const dead = await readTopic(kafka, deadLetterTopic, 2);
    const first = dead.find((m) => m.headers[DEAD_LETTER_HEADERS.OFFSET] === '1')!;
    expect(first.key).toBe('k1');
    expect(first.value.equals(garbage)).toBe(true);
    expect(first.headers.origin).toBe('test');
    expect(first.headers[DEAD_LETTER_HEADERS.TOPIC]).toBe(topic);
    expect(first.headers[DEAD_LETTER_HEADERS.PARTITION]).toBe('0');
    expect(first.headers[DEAD_LETTER_HEADERS.ERROR_CODE]).toBe('bad-input');
    expect(first.headers[DEAD_LETTER_HEADERS.ERROR]).toMatch(new RegExp(`^${topic.replace(/\./g, '\\.')}/0@1: byte \\d+: `));
    expect(dead.map((m) => m.headers[DEAD_LETTER_HEADERS.OFFSET]).sort()).toEqual(['1', '2']);

    // Logged once, with a sample, not once per message.
    const poisonLogs = logger.records.filter((r) => r.message.includes('poison'));
    expect(poisonLogs).toHaveLength(1);
    expect(poisonLogs[0]!.fields!.sample).toBe(garbage.toString('hex'));
  });

  it('retries a retriable failure of apply, holding the batch, and leaves offsets uncommitted on shutdown', async () => {
    const topic = uniqueTopic('otlp_spans');
    await broker.createTopic(topic);
    await producer.send({ topic, messages: [{ value: Buffer.from(tracesProto(await makeSpans(3))) }] });
    const groupId = uniqueTopic('group');
    let attempts = 0;
    const failing = startSource<DecodedBatch>({
      topics: [{ topic, signal: 'traces' }],
      groupId,
      backoff: { initialMs: 20, maxMs: 50 },
      decode: decodeMessage,
      apply: async () => {
        attempts++;
        throw new WaitgraphError('broker', 'alert topic unavailable');
      },
    });
    await failing.start();
    await waitFor('several attempts', () => attempts >= 3);
    expect(failing.status).toBe('running');
    await failing.shutdown();
    await expect(failing.stopped()).resolves.toBeUndefined();
    expect(failing.status).toBe('stopped');
    expect((await committedOffsets(kafka, groupId, topic))[0]).toBe('-1');

    // The next member of the group gets the same messages: nothing was lost.
    const applied: DecodedMessage<DecodedBatch>[] = [];
    const next = startSource<DecodedBatch>({
      topics: [{ topic, signal: 'traces' }],
      groupId,
      decode: decodeMessage,
      apply: async (messages) => void applied.push(...messages),
    });
    await next.start();
    await waitFor('committed', async () => (await committedOffsets(kafka, groupId, topic))[0] === '1');
    expect(applied.flatMap((m) => m.value.spans)).toHaveLength(3);
  });

  it('stops, and says why, when apply fails in a way retrying cannot fix', async () => {
    const topic = uniqueTopic('otlp_spans');
    await broker.createTopic(topic);
    await producer.send({ topic, messages: [{ value: Buffer.from(tracesProto(await makeSpans(1))) }] });
    const groupId = uniqueTopic('group');
    const source = startSource<DecodedBatch>({
      topics: [{ topic, signal: 'traces' }],
      groupId,
      decode: decodeMessage,
      apply: async () => {
        throw new WaitgraphError('internal', 'task table out of step with the graph');
      },
    });
    await source.start();
    await expect(source.stopped()).rejects.toThrow('task table out of step with the graph');
    expect(source.status).toBe('failed');
    expect((await committedOffsets(kafka, groupId, topic))[0]).toBe('-1');
  });

  it('shuts down within its grace period even when apply never settles', async () => {
    const topic = uniqueTopic('otlp_spans');
    await broker.createTopic(topic);
    await producer.send({ topic, messages: [{ value: Buffer.from(tracesProto(await makeSpans(1))) }] });
    let called = false;
    const source = startSource<DecodedBatch>({
      topics: [{ topic, signal: 'traces' }],
      groupId: uniqueTopic('group'),
      decode: decodeMessage,
      apply: () => {
        called = true;
        return new Promise<void>(() => {});
      },
    });
    await source.start();
    await waitFor('apply called', () => called);
    const t0 = Date.now();
    await source.shutdown(500);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(source.status).toBe('stopped');
  });

  it('rejects bad options at construction', () => {
    const base = { brokers: ['127.0.0.1:1'], decode: decodeMessage, apply: async () => {} };
    expect(() => new KafkaSource({ ...base, topics: [] })).toThrow('no topics');
    expect(() => new KafkaSource({ ...base, topics: [{ topic: 'x', signal: 'traces', encoding: 'jaeger_proto' as 'otlp_proto' }] })).toThrow(
      /unknown encoding jaeger_proto/,
    );
    expect(() => new KafkaSource({ ...base, brokers: [] })).toThrow('no brokers');
  });
});

describe('traceIdFromKey', () => {
  it('reads the trace id from a hex-text key and from a raw 16-byte key', () => {
    const hex = '5b8efff798038103d269b633813fc60c';
    expect(traceIdFromKey(Buffer.from(hex))).toBe(hex);
    expect(traceIdFromKey(Buffer.from(hex.toUpperCase()))).toBe(hex);
    expect(traceIdFromKey(Buffer.from(hex, 'hex'))).toBe(hex);
    expect(traceIdFromKey(Buffer.from('not a trace id'))).toBeUndefined();
    expect(traceIdFromKey(null)).toBeUndefined();
  });
});
