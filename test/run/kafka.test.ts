/**
 * `waitgraph run` on a real Kafka broker, as a child process: spans in through the spans topic (OTLP
 * protobuf, as the Collector's kafka exporter writes it: one span or a whole batch per message, a trace
 * spread over messages and partitions) and through OTLP/HTTP; alerts out on the alert topic, checked
 * against the alert schema; the resolution when a wait times out; malformed messages dead-lettered while
 * the stream goes on; a SIGKILL and restart with no missed and no repeated alert; a broker restart with
 * nothing lost.
 */
import { Partitioners, type Kafka, type Producer } from 'kafkajs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Alert } from '../../schemas/index.js';
import { endOffsets, readTopic, waitFor, type ReadMessage } from '../io/kafka-helpers.js';
import { waitEventLog } from '../io/otlp-payloads.js';
import { ensureKafka, kafkaWithProducer, testKafkaClient, uniqueTopic, type TestKafka } from '../support/kafka.js';
import { schemaErrors, validateAlert } from '../support/schemas.js';
import { scenarioSpans, spanById, timedOut, tracesProto, type FixtureSpan } from './otlp-fixtures.js';
import { every, post, startProcessor, stopProcessor, waitReady, type RunningProcessor } from './processes.js';

const running: RunningProcessor[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => stopProcessor(p, 2000)));
});

/** The topics and group of one test: nothing shared with the tests beside it on the broker. */
interface Topics {
  spans: string;
  logs: string;
  alerts: string;
  deadLetter: string;
  group: string;
}

async function topicsOn(broker: TestKafka): Promise<Topics> {
  const t = { spans: uniqueTopic('otlp_spans'), logs: uniqueTopic('otlp_logs'), alerts: uniqueTopic('alerts'), deadLetter: uniqueTopic('dlq'), group: uniqueTopic('group') };
  await createdTopic(broker, t.spans, 3);
  await createdTopic(broker, t.logs, 1);
  return t;
}

/**
 * Creates a topic and waits until every partition answers. kafkajs's own wait for leaders sometimes fails
 * on a topic the broker created a moment ago ("does not host this topic-partition"): then ask again.
 */
async function createdTopic(broker: TestKafka, topic: string, partitions: number): Promise<void> {
  await broker.createTopic(topic, partitions).catch(() => {});
  const kafka = testKafkaClient(broker.brokers);
  await waitFor(`topic ${topic}`, async () => {
    const ends = await endOffsets(kafka, topic).catch(() => ({}));
    return Object.keys(ends).length === partitions;
  });
}

function processorArgs(broker: TestKafka, t: Topics, more: string[] = []): string[] {
  return [
    '--kafka-brokers', broker.bootstrap,
    '--spans-topic', t.spans,
    '--logs-topic', t.logs,
    '--alert-topic', t.alerts,
    '--dead-letter-topic', t.deadLetter,
    '--group-id', t.group,
    '--port', '0',
    '--alert-file', '',
    '--stdout', 'json',
    '--stats-interval', '0',
    '--detect-interval', '100ms',
    '--jaeger-url', 'http://jaeger.example:16686',
    ...more,
  ];
}

async function start(args: string[]): Promise<RunningProcessor> {
  const p = await startProcessor(args);
  running.push(p);
  return p;
}

/** Every message on a topic now. */
async function readAll(kafka: Kafka, topic: string): Promise<ReadMessage[]> {
  const ends = await endOffsets(kafka, topic).catch(() => ({}) as Record<number, string>);
  const count = Object.values(ends).reduce((n, o) => n + Number(o), 0);
  if (count === 0) return [];
  return readTopic(kafka, topic, count);
}

/** The alerts on the alert topic, each checked against the schema and its key. */
async function alertsOn(kafka: Kafka, topic: string): Promise<Alert[]> {
  const messages = await readAll(kafka, topic);
  return messages.map((m) => {
    const alert = JSON.parse(m.value.toString('utf8')) as Alert;
    expect(validateAlert(alert), schemaErrors(validateAlert)).toBe(true);
    expect(m.key).toBe(alert.fingerprint);
    expect(m.headers['waitgraph.change']).toBe(alert.change);
    return alert;
  });
}

async function waitForAlerts(kafka: Kafka, topic: string, check: (alerts: Alert[]) => boolean, timeoutMs = 20_000): Promise<Alert[]> {
  let last: Alert[] = [];
  let failure: unknown;
  await waitFor(
    `alerts on ${topic}`,
    async () => {
      try {
        last = await alertsOn(kafka, topic);
      } catch (err) {
        // The processor creates the alert topic: until its partitions have leaders, reading it fails.
        if (!String((err as Error).message).includes('topic-partition')) throw err;
        failure = err;
        return false;
      }
      return check(last);
    },
    timeoutMs,
  ).catch((err: Error) => {
    throw new Error(`${err.message}; saw ${JSON.stringify(last.map((a) => [a.change, a.fingerprint]))}${failure ? `; last read error: ${String(failure)}` : ''}`);
  });
  return last;
}

const count = (alerts: Alert[], change: string, fingerprint?: string) =>
  alerts.filter((a) => a.change === change && (fingerprint === undefined || a.fingerprint === fingerprint)).length;

/** Sends each span as its own unkeyed message, round-robin over the partitions: one trace over several. */
async function produceSpread(producer: Producer, topic: string, spans: readonly FixtureSpan[], partitions = 3): Promise<void> {
  await producer.send({ topic, messages: spans.map((s, i) => ({ partition: i % partitions, value: tracesProto([s]) })) });
}

describe('waitgraph run on Kafka', () => {
  let broker: TestKafka;
  let kafka: Kafka;
  let producer: Producer;

  beforeAll(async () => {
    ({ broker, kafka, producer } = await kafkaWithProducer());
  });
  afterAll(async () => {
    await producer?.disconnect();
  });

  it('alerts on the alert topic for spans from Kafka and OTLP/HTTP, resolves on a timeout, and dead-letters malformed messages', { timeout: 120_000 }, async () => {
    const t = await topicsOn(broker);
    // Snapshots are sent once here: a long staleness time keeps them trusted for the whole test.
    const p = await start(processorArgs(broker, t, ['--stale-after', '5m', '--instance-id', 'test-a']));
    await waitReady(p);

    // A malformed message first, on the partition the cycle's first span will take.
    await producer.send({ topic: t.spans, messages: [{ partition: 0, value: Buffer.from('not an OTLP request') }] });
    const ab = scenarioSpans('01-cross-service-ab-ba.json');
    await produceSpread(producer, t.spans, ab);
    // A whole batch in one message, keyed by its trace id (partition_traces_by_id).
    const ring = scenarioSpans('06-goroutine-channel-ring.json');
    await producer.send({ topic: t.spans, messages: [{ key: ring[0]!.span.traceId, value: tracesProto(ring) }] });
    // And one straight to the receiver.
    expect(await post(p, '/v1/traces', tracesProto(scenarioSpans('09-session-lock-ring.json')), 'application/x-protobuf')).toBe(200);

    const opened = await waitForAlerts(kafka, t.alerts, (a) => count(a, 'opened') >= 3);
    expect(opened).toHaveLength(3);
    const bySize = Object.fromEntries(opened.map((a) => [a.finding.tasks.length, a]));
    expect(Object.keys(bySize).sort()).toEqual(['4', '5', '8']);
    const abAlert = bySize[4]!;
    expect(abAlert.finding).toMatchObject({ kind: 'deadlock', state: 'active', services: ['billing', 'orders'], resources: ['orders-db/invoices/7', 'orders-db/orders/42'] });
    expect(abAlert.finding.chain).toHaveLength(4);
    expect(abAlert.detector).toEqual({ instance: 'test-a', version: expect.any(String) });
    expect(abAlert.detectionLatencyMs).toBeGreaterThanOrEqual(0);
    for (const link of abAlert.finding.links) expect(link.url).toMatch(/^http:\/\/jaeger\.example:16686\/trace\/[0-9a-f]{32}\?uiFind=[0-9a-f]{16}$/);
    expect(bySize[5]!.finding.victims?.count).toBe(1);

    // The malformed message: counted, on the dead-letter topic with the error, and the stream went on.
    expect(await p.metric('waitgraph_bad_input_total{reason="decode"}')).toBe(1);
    const [dead] = await readTopic(kafka, t.deadLetter, 1);
    expect(dead!.value.toString()).toBe('not an OTLP request');
    expect(dead!.headers['waitgraph.source.topic']).toBe(t.spans);
    expect(dead!.headers['waitgraph.error']).toMatch(/^otlp_spans\.\S+\/0@0: /);
    // The source's log line and its lag gauge, from the Kafka thread, are the processor's own.
    const poison = p.logs().find((l) => l.message === 'KafkaSource: poison message skipped');
    expect(poison).toMatchObject({ level: 'warn', input: `${t.spans}/0@0`, deadLetterTopic: t.deadLetter, total: 1 });
    expect(await p.metric(`waitgraph_consumer_lag{topic="${t.spans}",partition="0"}`)).toBe(0);
    expect(p.logs().filter((l) => l.level === 'error')).toEqual([]);
    expect(await p.metric('waitgraph_spans_received_total')).toBe(ab.length + ring.length + 8);
    // A log-based wait event (OTEP 4430) on the logs topic is taken in too.
    const events = await p.metric('waitgraph_wait_events_received_total');
    await producer.send({ topic: t.logs, messages: [{ value: Buffer.from(await waitEventLog('proto')) }] });
    await waitFor('the log-based event', async () => (await p.metric('waitgraph_wait_events_received_total')) === events + 1);

    // The billing handler gives up its lock wait: the cycle breaks, and that is published once.
    const billingHandler = spanById(ab, '5bdd92b962a561b6');
    await producer.send({ topic: t.spans, messages: [{ partition: 2, value: tracesProto([timedOut(billingHandler, Date.now())]) }] });
    const all = await waitForAlerts(kafka, t.alerts, (a) => count(a, 'resolved') >= 1);
    const resolved = all.find((a) => a.change === 'resolved')!;
    expect(resolved.fingerprint).toBe(abAlert.fingerprint);
    expect(resolved.finding).toMatchObject({ state: 'resolved', formedAt: abAlert.finding.formedAt, brokenBy: { event: 'lock.timeout', task: { service: 'billing', taskId: '44' } } });
    await new Promise((ok) => setTimeout(ok, 1000));
    expect((await alertsOn(kafka, t.alerts)).map((a) => a.change).sort()).toEqual(['opened', 'opened', 'opened', 'resolved']);
    expect(await stopProcessor(p)).toBe(0);
  });

  it('after SIGKILL and restart: no alert repeated, none missed (one formed while it was down), and the resolution still comes', { timeout: 120_000 }, async () => {
    const t = await topicsOn(broker);
    const args = processorArgs(broker, t, ['--stale-after', '3s']);
    // Live emitters: each sends its open spans again every 300 ms, as instrumented services do.
    let ab = scenarioSpans('01-cross-service-ab-ba.json');
    const stopAb = every(300, () => produceSpread(producer, t.spans, ab));
    let p = await start(args);
    const first = await waitForAlerts(kafka, t.alerts, (a) => count(a, 'opened') === 1);
    const abFp = first[0]!.fingerprint;

    p.kill('SIGKILL');
    expect(await p.exited).toBe('SIGKILL');
    // While no processor runs, a second deadlock forms.
    const ringSpans = scenarioSpans('09-session-lock-ring.json');
    const stopRing = every(300, () => producer.send({ topic: t.spans, messages: [{ key: ringSpans[0]!.span.traceId, value: tracesProto(ringSpans) }] }));
    await new Promise((ok) => setTimeout(ok, 1000));

    p = await start(args);
    await waitReady(p, 60_000);
    expect(p.logs().find((l) => l.message === 'read back the alerts announced before')).toMatchObject({ openDeadlocks: 1 });
    const afterRestart = await waitForAlerts(kafka, t.alerts, (a) => count(a, 'opened') >= 2);
    const ringFp = afterRestart.find((a) => a.fingerprint !== abFp)!.fingerprint;
    // Well past warm-up and several detection passes: still one alert per deadlock.
    await new Promise((ok) => setTimeout(ok, 3000));
    let alerts = await alertsOn(kafka, t.alerts);
    expect(alerts.map((a) => [a.change, a.fingerprint])).toEqual([
      ['opened', abFp],
      ['opened', ringFp],
    ]);

    // The orders handler times out: the AB-BA deadlock breaks, and the restarted processor says so, once.
    ab = ab.map((s) => (s.span.spanId === '6deaae88ff5252b7' ? timedOut(s, Date.now()) : s));
    alerts = await waitForAlerts(kafka, t.alerts, (a) => count(a, 'resolved') >= 1);
    await new Promise((ok) => setTimeout(ok, 1000));
    alerts = await alertsOn(kafka, t.alerts);
    expect(count(alerts, 'opened', abFp)).toBe(1);
    expect(count(alerts, 'resolved', abFp)).toBe(1);
    expect(count(alerts, 'opened', ringFp)).toBe(1);
    expect(alerts.find((a) => a.change === 'resolved')!.finding.brokenBy).toMatchObject({ event: 'lock.timeout', task: { service: 'orders', taskId: '32' } });
    expect(alerts).toHaveLength(3);
    await Promise.all([stopAb(), stopRing()]);
    expect(await stopProcessor(p)).toBe(0);
  });
});

describe('waitgraph run through a broker restart', () => {
  it('keeps what it read before the outage, publishes an alert formed during it once the broker is back, and reads on', { timeout: 300_000 }, async () => {
    const broker = await ensureKafka({ name: 'run-restart' });
    const kafka = testKafkaClient(broker.brokers);
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    try {
      const t = await topicsOn(broker);
      const p = await start(processorArgs(broker, t, ['--stale-after', '5m']));
      await waitReady(p);
      const ab = scenarioSpans('01-cross-service-ab-ba.json');
      const orders = ab.filter((s) => s.span.traceId === ab[0]!.span.traceId);
      const billing = ab.filter((s) => !orders.includes(s));
      // Half of the cycle through Kafka before the outage.
      await produceSpread(producer, t.spans, billing);
      await waitFor('the billing side applied', async () => (await p.metric('waitgraph_spans_received_total')) === billing.length);
      await producer.disconnect();

      await broker.stop();
      // The other half arrives over OTLP/HTTP while the broker is down: the alert waits for it.
      const answered = post(p, '/v1/traces', tracesProto(orders), 'application/x-protobuf');
      await new Promise((ok) => setTimeout(ok, 2000));
      await broker.restart();

      expect(await answered).toBe(200);
      await producer.connect();
      const alerts = await waitForAlerts(kafka, t.alerts, (a) => a.length >= 1, 60_000);
      expect(alerts.map((a) => a.change)).toEqual(['opened']);
      expect(alerts[0]!.finding.tasks).toHaveLength(4);

      // And the source reads on after the restart.
      const ring = scenarioSpans('09-session-lock-ring.json');
      await producer.send({ topic: t.spans, messages: [{ key: ring[0]!.span.traceId, value: tracesProto(ring) }] });
      const after = await waitForAlerts(kafka, t.alerts, (a) => a.length >= 2, 60_000);
      expect(after.map((a) => [a.change, a.finding.tasks.length])).toEqual([
        ['opened', 4],
        ['opened', 8],
      ]);
      expect(await stopProcessor(p)).toBe(0);
    } finally {
      await producer.disconnect();
    }
  });
});
