/**
 * The Kafka alert sink on a real broker: one JSON message per finding change, keyed by fingerprint, with
 * the change in a header, read back by an ordinary consumer.
 */
import type { Kafka } from 'kafkajs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ALERT_HEADERS, KafkaAlertSink, silentLogger, type AlertChange } from '../../processor/src/io/index.js';
import { ensureKafka, testKafkaClient, uniqueTopic, type TestKafka } from '../support/kafka.js';
import { deadlock, readTopic } from './kafka-helpers.js';

let broker: TestKafka;
let kafka: Kafka;
const sinks: KafkaAlertSink[] = [];

beforeAll(async () => {
  broker = await ensureKafka();
  kafka = testKafkaClient(broker.brokers);
});
afterEach(async () => {
  await Promise.all(sinks.splice(0).map((s) => s.shutdown()));
});

async function startSink(topic: string, render?: (c: AlertChange) => unknown): Promise<KafkaAlertSink> {
  const sink = new KafkaAlertSink({ brokers: broker.brokers, topic, logger: silentLogger, render });
  sinks.push(sink);
  await sink.start();
  return sink;
}

describe('Kafka alert sink', () => {
  it('publishes one JSON message per change, keyed by fingerprint, in order per finding', async () => {
    const topic = uniqueTopic('waitgraph.alerts');
    await broker.createTopic(topic, 3);
    const sink = await startSink(topic);
    const a = 'a1b2c3d4e5f60718';
    const b = '0f1e2d3c4b5a6978';
    await sink.publish([
      { change: 'opened', finding: deadlock(a, 'active') },
      { change: 'opened', finding: deadlock(b, 'active') },
    ]);
    await sink.publish([{ change: 'resolved', finding: deadlock(a, 'resolved') }]);

    const messages = await readTopic(kafka, topic, 3);
    expect(messages.map((m) => m.key).sort()).toEqual([b, a, a].sort());
    const ofA = messages.filter((m) => m.key === a).sort((x, y) => Number(x.offset) - Number(y.offset));
    expect(ofA[0]!.partition).toBe(ofA[1]!.partition);
    expect(ofA.map((m) => m.headers[ALERT_HEADERS.CHANGE])).toEqual(['opened', 'resolved']);
    expect(ofA.map((m) => m.headers[ALERT_HEADERS.KIND])).toEqual(['deadlock', 'deadlock']);
    expect(ofA[0]!.headers['content-type']).toBe('application/json');
    const body = JSON.parse(ofA[1]!.value.toString('utf8')) as AlertChange;
    expect(body).toEqual({ change: 'resolved', finding: deadlock(a, 'resolved') });
  });

  it('renders the body with the given function, keeping the fingerprint as the key', async () => {
    const topic = uniqueTopic('waitgraph.alerts');
    await broker.createTopic(topic);
    const sink = await startSink(topic, (c) => ({ type: `deadlock.${c.change}`, summary: c.finding.summary }));
    await sink.publish([{ change: 'opened', finding: deadlock('00000000000000ff', 'active') }]);
    const [m] = await readTopic(kafka, topic, 1);
    expect(m!.key).toBe('00000000000000ff');
    expect(JSON.parse(m!.value.toString('utf8'))).toEqual({ type: 'deadlock.opened', summary: 'orders and payments wait for each other' });
  });

  it('refuses to publish before start and after shutdown; shutdown is idempotent', async () => {
    const topic = uniqueTopic('waitgraph.alerts');
    const idle = new KafkaAlertSink({ brokers: broker.brokers, topic, logger: silentLogger });
    await expect(idle.publish([{ change: 'opened', finding: deadlock('00000000000000aa', 'active') }])).rejects.toThrow(/before start/);
    const sink = await startSink(topic);
    await Promise.all([sink.shutdown(), sink.shutdown()]);
    await expect(sink.publish([{ change: 'opened', finding: deadlock('00000000000000aa', 'active') }])).rejects.toThrow(/after shutdown/);
  });
});
