/**
 * The Kafka adapters across a broker restart, on a broker of this file's own (so the restart disturbs no
 * other test file): spans keep flowing in, the source applies every one of them, and every alert that
 * `apply` publishes reaches the alert topic. At-least-once: duplicates are allowed, losses are not.
 */
import { Partitioners } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { KafkaAlertSink, KafkaSource, silentLogger } from '../../processor/src/io/index.js';
import type { DecodedBatch } from '../../processor/src/model/span.js';
import { ensureKafka, testKafkaClient, uniqueTopic } from '../support/kafka.js';
import { committedOffsets, deadlock, decodeMessage, endOffsets, readTopic, waitFor } from './kafka-helpers.js';
import { makeSpans, tracesProto } from './otlp-payloads.js';

const stops: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const stop of stops.splice(0)) await stop();
});

const fingerprint = (i: number) => i.toString(16).padStart(16, '0');

describe('Kafka adapters and a broker restart', () => {
  it('apply every span and publish every alert while the broker restarts mid-stream', { timeout: 180_000 }, async () => {
    const broker = await ensureKafka({ name: 'io-restart' });
    const kafka = testKafkaClient(broker.brokers);
    const topic = uniqueTopic('otlp_spans');
    const alerts = uniqueTopic('waitgraph.alerts');
    await broker.createTopic(topic, 2);
    await broker.createTopic(alerts, 2);

    const sink = new KafkaAlertSink({ brokers: broker.brokers, topic: alerts, logger: silentLogger, backoff: { initialMs: 100, maxMs: 1000 } });
    stops.push(() => sink.shutdown());
    await sink.start();
    const applied = new Set<string>();
    const groupId = uniqueTopic('group');
    const source = new KafkaSource<DecodedBatch>({
      brokers: broker.brokers,
      topics: [{ topic, signal: 'traces' }],
      groupId,
      logger: silentLogger,
      maxWaitTimeMs: 100,
      backoff: { initialMs: 100, maxMs: 1000 },
      decode: decodeMessage,
      apply: async (messages) => {
        // As the wiring does: the alerts a batch causes are published before its offsets are committed.
        const names = messages.flatMap((m) => m.value.spans.map((s) => s.name));
        await sink.publish(names.map((n) => ({ change: 'opened', finding: deadlock(fingerprint(Number(n.split(' ')[1])), 'active') })));
        for (const n of names) applied.add(n);
      },
    });
    stops.push(() => source.shutdown());
    await source.start();

    const total = 60;
    const spans = await makeSpans(total);
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    stops.push(() => producer.disconnect());
    let restart: Promise<void> | undefined;
    for (let i = 0; i < total; i++) {
      if (i === 20) restart = broker.restart();
      // A test producer is not under test: it just tries again until the broker takes the span.
      for (;;) {
        try {
          await producer.send({ topic, messages: [{ key: String(i), value: Buffer.from(tracesProto([spans[i]!])) }] });
          break;
        } catch {
          await new Promise((ok) => setTimeout(ok, 200));
        }
      }
      await new Promise((ok) => setTimeout(ok, 25));
    }
    await restart;

    await waitFor('every span applied', () => applied.size === total, 90_000);
    const ends = await endOffsets(kafka, topic);
    await waitFor('every offset committed', async () => {
      const committed = await committedOffsets(kafka, groupId, topic);
      return Object.entries(ends).every(([p, end]) => end === '0' || committed[Number(p)] === end);
    });
    expect(source.poisonMessages).toBe(0);
    const published = await readTopic(kafka, alerts, total, 60_000);
    expect(new Set(published.map((m) => m.key)).size).toBe(total);
  });

  it('a source and a sink started while the broker is down wait for it, then work', { timeout: 120_000 }, async () => {
    const broker = await ensureKafka({ name: 'io-restart' });
    const kafka = testKafkaClient(broker.brokers);
    const topic = uniqueTopic('otlp_spans');
    const alerts = uniqueTopic('waitgraph.alerts');
    await broker.createTopic(topic);
    await broker.createTopic(alerts);
    await broker.stop();

    const backoff = { initialMs: 100, maxMs: 500 };
    const sink = new KafkaAlertSink({ brokers: broker.brokers, topic: alerts, logger: silentLogger, backoff });
    stops.push(() => sink.shutdown());
    const applied: string[] = [];
    const source = new KafkaSource<DecodedBatch>({
      brokers: broker.brokers,
      topics: [{ topic, signal: 'traces' }],
      groupId: uniqueTopic('group'),
      logger: silentLogger,
      maxWaitTimeMs: 100,
      backoff,
      decode: decodeMessage,
      apply: async (messages) => {
        const names = messages.flatMap((m) => m.value.spans.map((s) => s.name));
        await sink.publish(names.map((n) => ({ change: 'opened', finding: deadlock(fingerprint(Number(n.split(' ')[1])), 'active') })));
        applied.push(...names);
      },
    });
    stops.push(() => source.shutdown());
    let started = 0;
    const starting = Promise.all([source.start(), sink.start()]).then(() => void started++);
    await new Promise((ok) => setTimeout(ok, 2000));
    expect(started).toBe(0);
    expect(source.status).toBe('starting');

    await broker.restart();
    await starting;
    expect(source.status).toBe('running');
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    stops.push(() => producer.disconnect());
    await producer.send({ topic, messages: [{ value: Buffer.from(tracesProto(await makeSpans(3))) }] });
    await waitFor('the spans applied', () => applied.length === 3);
    const published = await readTopic(kafka, alerts, 3);
    expect(published.map((m) => m.key).sort()).toEqual([0, 1, 2].map(fingerprint));
  });
});
