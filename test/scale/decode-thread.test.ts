/**
 * The decode stage on a thread of its own (`waitgraph run --role both`), on a real broker: it publishes the
 * wait records the decode stage makes of the same messages; its log lines, metrics, life stage and counts
 * reach the event loop's; a stage that cannot be made fails its start with the reason; shutdown ends it.
 */
import type { Kafka, Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildWorkload } from '../../processor/bench/otlp-workload.js';
import { decodeOtlpTracesProto } from '../../processor/src/decode/index.js';
import { ProcessorMetrics } from '../../processor/src/io/index.js';
import { decodeWaitRecordBatch, DecodeStageThread, WaitRecordBuilder } from '../../processor/src/scale/index.js';
import { kafkaWithProducer, uniqueTopic, type TestKafka } from '../support/kafka.js';
import { recordingLogger, waitFor } from '../io/kafka-helpers.js';
import { metricValue } from '../support/metrics.js';

let broker: TestKafka;
let kafka: Kafka;
let producer: Producer;

beforeAll(async () => {
  ({ broker, kafka, producer } = await kafkaWithProducer());
});
afterAll(async () => {
  await producer?.disconnect();
});

/** The spans of the wait-record messages of a topic, from its start, until `count` spans have come; and the messages. */
async function readWaits(topic: string, count: number): Promise<{ spans: string[]; messages: number }> {
  const consumer = kafka.consumer({ groupId: uniqueTopic('dt-reader'), maxWaitTimeInMs: 100 });
  const spans: string[] = [];
  let messages = 0;
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        messages++;
        for (const s of decodeWaitRecordBatch(message.value!).batch.spans) spans.push(`${s.traceId}/${s.spanId}/${s.endTimeUnixNano}`);
      },
    });
    await waitFor(`${count} spans on ${topic}`, () => spans.length >= count);
  } finally {
    await consumer.disconnect();
  }
  return { spans: spans.sort(), messages };
}

describe('the decode stage on its own thread', () => {
  it('publishes the wait records of every message, and relays its log lines, metrics, life stage and counts', async () => {
    const spans = uniqueTopic('dt-spans');
    const waits = uniqueTopic('dt-waits');
    await broker.createTopic(spans, 1);
    const work = buildWorkload({ spans: 2_000, batchSize: 250, seed: 3, services: 2 });
    // The messages, and a poison one among them.
    const values = work.batches.map((b) => Buffer.from(b));
    values.splice(3, 0, Buffer.from('not an OTLP request'));
    await producer.send({ topic: spans, messages: values.map((value) => ({ value })) });

    const logger = recordingLogger();
    const metrics = new ProcessorMetrics({ processMetrics: false });
    const stage = new DecodeStageThread({
      brokers: broker.brokers,
      topics: [{ topic: spans, signal: 'traces' }],
      groupId: uniqueTopic('dt-group'),
      waitsTopic: waits,
      waitsPartitions: 1,
      deadLetterTopic: null,
      fromBeginning: true,
      logger,
      metrics,
    });
    expect(stage.status).toBe('new');
    await stage.start();
    await waitFor('every span decoded', () => stage.counts.spansIn === work.spanCount);
    expect(stage.status).toBe('running');

    // What the decode stage keeps of the same messages, in the same order.
    const reference = new WaitRecordBuilder();
    for (const b of work.batches) reference.add(decodeOtlpTracesProto(b), 0);
    const want = reference.take()!.spans.map((s) => `${s.traceId}/${s.spanId}/${s.end}`).sort();
    expect(want.length).toBeGreaterThan(0);
    expect(stage.counts).toMatchObject({ spansIn: work.spanCount, spansKept: want.length });
    const published = await readWaits(waits, want.length);
    expect(published.spans).toEqual(want);
    await waitFor('the counts of what it published', () => stage.counts.messagesOut === published.messages);

    // The poison message: logged, and counted, on the event loop.
    expect(logger.records.some((r) => r.level === 'warn' && r.fields?.input === `${spans}/0@3`)).toBe(true);
    expect(await metricValue(metrics, 'waitgraph_bad_input_total', 'reason="decode"')).toBe(1);
    expect(await metricValue(metrics, 'waitgraph_spans_received_total')).toBe(work.spanCount);
    expect(await metricValue(metrics, 'waitgraph_consumer_lag', `topic="${spans}",partition="0"`)).toBe(0);

    await stage.shutdown();
    await expect(stage.stopped()).resolves.toBeUndefined();
    expect(stage.status).toBe('stopped');
  }, 60_000);

  it('stops, failed, when its thread ends under it', async () => {
    const spans = uniqueTopic('dt-spans');
    await broker.createTopic(spans, 1);
    const stage = new DecodeStageThread({
      brokers: broker.brokers,
      topics: [{ topic: spans, signal: 'traces' }],
      groupId: uniqueTopic('dt-group'),
      waitsTopic: uniqueTopic('dt-waits'),
      waitsPartitions: 1,
      deadLetterTopic: null,
      logger: recordingLogger(),
    });
    await stage.start();
    expect(stage.status).toBe('running');
    await stage.worker.terminate();
    await expect(stage.stopped()).rejects.toThrow(/the thread exited with 1/);
    expect(stage.status).toBe('failed');
    // Shutting down a stage whose thread is gone ends at once.
    await stage.shutdown();
  }, 60_000);

  it('fails its start with the reason when the stage cannot be made, and shuts down', async () => {
    const logger = recordingLogger();
    const stage = new DecodeStageThread({ brokers: broker.brokers, waitsPartitions: 0, logger });
    await expect(stage.start()).rejects.toMatchObject({ code: 'bad-config', message: expect.stringContaining('waitsPartitions must be a whole number') });
    await stage.shutdown();
    expect(stage.status).toBe('stopped');
  });
});
