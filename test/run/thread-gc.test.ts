/**
 * The Kafka thread's garbage collections, as `waitgraph run` (bin/waitgraph.js, with the V8 flags of
 * bin/v8-flags.js) shows them on /metrics, under a stream of spans from a real broker.
 *
 * V8 flags hold for every isolate of the process, so the Kafka thread has the event loop's 64 MiB
 * semi-spaces. With those alone, V8 marked the thread's small old generation over and over (a full
 * mark-compact every 60 - 130 ms under 60,000 spans/s); `--initial-old-space-size=256` leaves room for
 * what the young generation may promote. The thread's collections are on /metrics
 * (`waitgraph_thread_gc_duration_seconds`), as the event loop's are (`nodejs_gc_duration_seconds`).
 */
import type { Producer } from 'kafkajs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildWorkload, repeatBatch } from '../../processor/bench/otlp-workload.js';
import { endOffsets, waitFor } from '../io/kafka-helpers.js';
import { kafkaWithProducer, testKafkaClient, uniqueTopic, type TestKafka } from '../support/kafka.js';
import { startProcessor, stopProcessor, waitReady, type RunningProcessor } from './processes.js';

const running: RunningProcessor[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => stopProcessor(p, 2000)));
});

/** The count of a thread's collections of one kind, from /metrics text (0 when there were none). */
function collections(text: string, thread: string, kind: string): number {
  const line = text
    .split('\n')
    .find((l) => l.startsWith('waitgraph_thread_gc_duration_seconds_count{') && l.includes(`thread="${thread}"`) && l.includes(`kind="${kind}"`));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

describe('the Kafka thread of waitgraph run', () => {
  let broker: TestKafka;
  let producer: Producer;

  beforeAll(async () => {
    ({ broker, producer } = await kafkaWithProducer());
  });
  afterAll(async () => {
    await producer?.disconnect();
  });

  it('shows its collections on /metrics, and under a stream of spans rarely collects its old generation', { timeout: 120_000 }, async () => {
    const spans = uniqueTopic('otlp_spans');
    await broker.createTopic(spans, 3).catch(() => {});
    await waitFor(`topic ${spans}`, async () => Object.keys(await endOffsets(testKafkaClient(broker.brokers), spans).catch(() => ({}))).length === 3);
    // A stream for about 8 s: 30,000 spans a second (60 messages of 500), new traces all along.
    const work = buildWorkload({ spans: 30_000, batchSize: 500, seed: 7 });
    const SECONDS = 8;
    const p = await startProcessor([
      '--kafka-brokers', broker.bootstrap,
      '--spans-topic', spans,
      '--logs-topic', uniqueTopic('otlp_logs'),
      '--alert-topic', uniqueTopic('alerts'),
      '--dead-letter-topic', '',
      '--group-id', uniqueTopic('group'),
      '--port', '0',
      '--alert-file', '',
      '--stdout', 'none',
      '--stats-interval', '0',
    ]);
    running.push(p);
    await waitReady(p);
    const before = await (await fetch(`${p.url}/metrics`)).text();
    for (let second = 0; second < SECONDS; second++) {
      const started = Date.now();
      for (let i = 0; i < work.batches.length; i += 10) {
        const messages = work.batches.slice(i, i + 10).map((b, k) => ({ partition: (i + k) % 3, value: Buffer.from(repeatBatch(b, second, 1e9)) }));
        await producer.send({ topic: spans, messages });
        await new Promise((ok) => setTimeout(ok, Math.max(0, started + ((i + 10) / work.batches.length) * 1000 - Date.now())));
      }
    }
    await waitFor('every span taken in', async () => (await p.metric('waitgraph_spans_received_total')) >= SECONDS * work.spanCount, 60_000);
    const after = await (await fetch(`${p.url}/metrics`)).text();

    // The thread's collections are there, young and old, beside the event loop's.
    expect(after).toContain('# TYPE waitgraph_thread_gc_duration_seconds histogram');
    const minor = collections(after, 'kafka', 'minor') - collections(before, 'kafka', 'minor');
    expect(minor).toBeGreaterThan(0);
    // Its old generation: with the semi-spaces alone, one collection after another while the spans streamed.
    const major = collections(after, 'kafka', 'major') - collections(before, 'kafka', 'major');
    expect(major).toBeLessThanOrEqual(2);
    expect(collections(after, 'decode', 'minor')).toBe(0); // no decode thread in this role
  });
});
