/**
 * The Kafka input on its own thread, on a real broker: the event loop gets the records the run path's cut
 * makes of each message, with their record times; offsets are committed only once the event loop has the
 * batches in the graph and settled; the source's log lines and metrics reach the processor's; and a batch
 * the event loop cannot take stops the source, with the reason.
 */
import type { Kafka, Producer } from 'kafkajs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ProcessorMetrics, type AssignedPartition } from '../../processor/src/io/index.js';
import type { DetectionPipeline, TimedBatch, WaitInput } from '../../processor/src/run/index.js';
import { KafkaThread, KafkaThreadInput, WaitInputCutter } from '../../processor/src/run/index.js';
import { buildWorkload } from '../../processor/bench/otlp-workload.js';
import { kafkaWithProducer, uniqueTopic, type TestKafka } from '../support/kafka.js';
import { committedOffsets, endOffsets, recordingLogger, waitFor } from '../io/kafka-helpers.js';

let broker: TestKafka;
let kafka: Kafka;
let producer: Producer;
const inputs: KafkaThreadInput[] = [];

beforeAll(async () => {
  ({ broker, kafka, producer } = await kafkaWithProducer());
});
afterAll(async () => {
  await producer?.disconnect();
});
afterEach(async () => {
  await Promise.all(inputs.splice(0).map((i) => i.shutdown()));
});

/** What the event loop was given, by lane, and when `settled` was asked; `take` may be held or fail. */
class FakePipeline {
  readonly taken: { lane: string; items: TimedBatch[]; lastOffset?: string }[] = [];
  readonly assigned: AssignedPartition[] = [];
  settles = 0;
  hold: Promise<void> | undefined;
  failWith: Error | undefined;

  async take(lane: string, items: readonly TimedBatch[], _receivedAtMs: number, lastOffset?: string): Promise<void> {
    if (this.failWith) throw this.failWith;
    await this.hold;
    this.taken.push({ lane, items: [...items], lastOffset });
  }

  async settled(): Promise<void> {
    this.settles++;
    await this.hold;
  }

  assign(partitions: readonly AssignedPartition[]): void {
    this.assigned.push(...partitions);
  }

  get spans(): number {
    return this.taken.reduce((n, t) => n + t.items.reduce((m, it) => m + (it.held as WaitInput).spans, 0), 0);
  }
}

function startInput(
  topic: string,
  groupId: string,
  pipeline: FakePipeline,
  extra: { metrics?: ProcessorMetrics; logger?: ReturnType<typeof recordingLogger>; thread?: KafkaThread } = {},
) {
  const input = new KafkaThreadInput({
    brokers: broker.brokers,
    topics: [{ topic, signal: 'traces' }],
    groupId,
    deadLetterTopic: null,
    fromBeginning: true,
    maxWaitTimeMs: 100,
    pipeline: pipeline as unknown as DetectionPipeline,
    logger: extra.logger ?? recordingLogger(),
    metrics: extra.metrics,
    thread: extra.thread,
  });
  inputs.push(input);
  return input;
}

describe('the Kafka input on its own thread', () => {
  it('hands the event loop the cut records of every message, and commits only what it took in and settled', { timeout: 60_000 }, async () => {
    const topic = uniqueTopic('otlp_spans');
    // One partition: the thread's cut remembers open spans and wanted ancestors from message to message, so
    // what it keeps depends on the order it reads them in.
    await broker.createTopic(topic, 1);
    const work = buildWorkload({ spans: 3_000, batchSize: 250, seed: 9, services: 1, partialsEndAfter: 1 });
    for (const [i, b] of work.batches.entries()) await producer.send({ topic, messages: [{ value: Buffer.from(b), timestamp: String(1_700_000_000_000 + i) }] });

    const pipeline = new FakePipeline();
    let release!: () => void;
    pipeline.hold = new Promise<void>((ok) => (release = ok));
    const groupId = uniqueTopic('group');
    const metrics = new ProcessorMetrics({ processMetrics: false });
    const logger = recordingLogger();
    const input = startInput(topic, groupId, pipeline, { metrics, logger });
    await input.start();
    expect(input.status).toBe('running');
    await waitFor('the partition assigned', () => pipeline.assigned.length === 1);
    expect(pipeline.assigned[0]).toMatchObject({ topic, partition: 0 });
    // While the event loop holds the batches, nothing is committed.
    await new Promise((ok) => setTimeout(ok, 1_000));
    expect(Object.values(await committedOffsets(kafka, groupId, topic))).toEqual(['-1']);
    release();
    pipeline.hold = undefined;
    await waitFor('every span taken in', () => pipeline.spans === work.spanCount);
    await waitFor('every offset committed', async () => {
      const committed = await committedOffsets(kafka, groupId, topic);
      const ends = await endOffsets(kafka, topic);
      return Object.keys(ends).every((p) => committed[Number(p)] === ends[Number(p)]);
    });
    expect(pipeline.settles).toBeGreaterThan(0);

    // The records are those the run path's cut makes of the same messages, in offset order, with each
    // message's record time.
    const cutter = new WaitInputCutter();
    const expected = work.batches.map((bytes, i) => cutter.cut({ signal: 'traces', encoding: 'proto', bytes, name: `${topic}/0@${i}` }));
    const got = pipeline.taken.flatMap((t) => t.items);
    expect(pipeline.taken.every((t) => t.lane === `${topic}/0`)).toBe(true);
    expect(got.map((it) => it.observedAtMs)).toEqual(work.batches.map((_, i) => 1_700_000_000_000 + i));
    expect(got.map((it) => it.held)).toEqual(expected);
    expect(got.every((it) => it.batch === (it.held as WaitInput).batch)).toBe(true);
    expect(pipeline.taken.at(-1)!.lastOffset).toBe(String(work.batches.length - 1));
    expect(pipeline.taken.flatMap((t) => t.items).reduce((n, it) => n + it.batch.spans.length, 0)).toBeGreaterThan(500);
    // The lag gauge the thread's source sets is the processor's.
    expect(await metrics.registry.getSingleMetricAsString('waitgraph_consumer_lag')).toContain(`waitgraph_consumer_lag{topic="${topic}",partition="0"} 0`);

    await input.shutdown();
    expect(input.status).toBe('stopped');
    await expect(input.stopped()).resolves.toBeUndefined();
    expect(logger.records.filter((r) => r.level === 'error')).toEqual([]);
  });

  it('stops, with the reason, when the event loop cannot take a batch; nothing of it is committed', { timeout: 60_000 }, async () => {
    const topic = uniqueTopic('otlp_spans');
    await broker.createTopic(topic, 1);
    const work = buildWorkload({ spans: 500, batchSize: 250, seed: 2 });
    for (const b of work.batches) await producer.send({ topic, messages: [{ value: Buffer.from(b) }] });
    const pipeline = new FakePipeline();
    pipeline.failWith = new Error('the graph is broken');
    const groupId = uniqueTopic('group');
    const logger = recordingLogger();
    const input = startInput(topic, groupId, pipeline, { logger });
    await input.start();
    await expect(input.stopped()).rejects.toThrow('the graph is broken');
    expect(input.status).toBe('failed');
    expect(logger.records.some((r) => r.level === 'error' && String(r.fields?.error).includes('the graph is broken'))).toBe(true);
    expect(Object.values(await committedOffsets(kafka, groupId, topic))).toEqual(['-1']);
  });

  it('runs one source after another on one thread, each with a cut of its own, and ends only a thread of its own', { timeout: 60_000 }, async () => {
    const topic = uniqueTopic('otlp_spans');
    await broker.createTopic(topic, 1);
    // In reverse order: the ended version of a span comes before its open snapshot. A cut that remembered
    // the first source's snapshots would keep, in the second, ended versions that the first dropped.
    const work = buildWorkload({ spans: 1_000, batchSize: 250, seed: 4, services: 1, partialsEndAfter: 1 });
    work.batches.reverse();
    for (const b of work.batches) await producer.send({ topic, messages: [{ value: Buffer.from(b) }] });
    const thread = new KafkaThread();
    try {
      const cutter = new WaitInputCutter();
      const expected = work.batches.map((bytes, i) => cutter.cut({ signal: 'traces', encoding: 'proto', bytes, name: `${topic}/0@${i}` }));
      for (const round of [1, 2]) {
        const pipeline = new FakePipeline();
        const input = startInput(topic, uniqueTopic(`group-${round}`), pipeline, { thread });
        await input.start();
        await waitFor(`round ${round}: every span taken in`, () => pipeline.spans === work.spanCount);
        // The same records each time: the second source does not inherit the first one's memory of spans.
        expect(pipeline.taken.flatMap((t) => t.items.map((it) => it.held))).toEqual(expected);
        await input.shutdown();
        expect(input.status).toBe('stopped');
        expect(thread.ended).toBe(false);
      }
      // A second source while one runs is refused.
      const running = startInput(topic, uniqueTopic('group-3'), new FakePipeline(), { thread });
      await running.start();
      expect(() => startInput(topic, uniqueTopic('group-4'), new FakePipeline(), { thread }).start()).toThrow(/runs a source already/);
      await running.shutdown();
    } finally {
      await thread.close();
    }
    expect(thread.ended).toBe(true);
  });

  it('stops, failed, when its thread ends under it', { timeout: 60_000 }, async () => {
    const topic = uniqueTopic('otlp_spans');
    await broker.createTopic(topic, 1);
    const thread = new KafkaThread();
    const input = startInput(topic, uniqueTopic('group'), new FakePipeline(), { thread });
    await input.start();
    await thread.worker.terminate();
    await expect(input.stopped()).rejects.toThrow(/the thread exited with 1/);
    expect(input.status).toBe('failed');
    expect(thread.ended).toBe(true);
  });
});
