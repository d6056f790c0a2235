/**
 * Scale-out on a real broker: two processor instances (child processes, each a decode stage and a
 * detection stage with its own Kafka clients) share the spans topic. A lock cycle whose two spans are on
 * different partitions, so decoded by different instances, gives exactly one alert; after one instance is
 * killed with SIGKILL, the other takes its findings over: a new cycle owned by the dead instance still
 * gives exactly one alert, and the first one is not announced again.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { Partitioners, type Kafka, type Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lockCycle, type LockCycle } from '../../processor/bench/cycle-spans.js';
import { ownerPartition } from '../../processor/src/scale/index.js';
import { waitFor } from '../io/kafka-helpers.js';
import { ensureKafka, testKafkaClient, uniqueTopic, type TestKafka } from '../support/kafka.js';
import type { InstanceConfig, InstanceStatus } from './instance.js';

const INSTANCE = new URL('./instance.ts', import.meta.url).pathname;
const WAIT_PARTITIONS = 4;

interface Instance {
  child: ChildProcess;
  status: InstanceStatus | undefined;
}

let broker: TestKafka;
let kafka: Kafka;
let producer: Producer;
const children: ChildProcess[] = [];
const run = uniqueTopic('scale');
const topics = { spans: `${run}.spans`, waits: `${run}.waits`, alerts: `${run}.alerts` };

function startInstance(instanceId: string): Instance {
  const config: InstanceConfig = {
    instanceId,
    brokers: broker.brokers,
    spansTopic: topics.spans,
    waitsTopic: topics.waits,
    alertTopic: topics.alerts,
    decodeGroup: `${run}.decode`,
    ownershipGroup: `${run}.detect`,
    sessionTimeoutMs: 6_000,
  };
  const child = spawn(process.execPath, ['--import', 'tsx', INSTANCE, JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const inst: Instance = { child, status: undefined };
  createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      inst.status = JSON.parse(line) as InstanceStatus;
    } catch {}
  });
  return inst;
}

interface Alert {
  key: string;
  change: string;
  fingerprint: string;
  resources: string[];
}
const alerts: Alert[] = [];

async function followAlerts(): Promise<() => Promise<void>> {
  const consumer = kafka.consumer({ groupId: `${run}.reader`, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topics: [topics.alerts], fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      const v = JSON.parse(message.value!.toString('utf8'));
      alerts.push({ key: message.key!.toString(), change: v.change, fingerprint: v.finding.fingerprint, resources: v.finding.resources });
    },
  });
  return () => consumer.disconnect();
}

async function send(cycle: LockCycle): Promise<void> {
  // The two spans of the cycle on two different partitions.
  await producer.send({ topic: topics.spans, messages: [{ partition: 0, value: Buffer.from(cycle.messages[0]) }] });
  await producer.send({ topic: topics.spans, messages: [{ partition: 1, value: Buffer.from(cycle.messages[1]) }] });
}

/** A cycle whose fingerprint falls to one of the given ownership partitions. */
function cycleOwnedBy(partitions: readonly number[], prefix: string): LockCycle {
  for (let i = 0; ; i++) {
    const c = lockCycle(`${prefix}-${i}`);
    if (partitions.includes(ownerPartition(c.fingerprint, WAIT_PARTITIONS))) return c;
  }
}

/** Whether a consumer group is stable with `members` members. */
async function groupStable(groupId: string, members: number): Promise<boolean> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const { groups } = await admin.describeGroups([groupId]);
    return groups[0]?.state === 'Stable' && groups[0].members.length === members;
  } finally {
    await admin.disconnect();
  }
}

let stopAlerts: () => Promise<void>;

beforeAll(async () => {
  broker = await ensureKafka();
  kafka = testKafkaClient(broker.brokers);
  await broker.createTopic(topics.spans, 2);
  await broker.createTopic(topics.waits, WAIT_PARTITIONS);
  await broker.createTopic(topics.alerts, 1);
  producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  stopAlerts = await followAlerts();
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await stopAlerts?.();
  await producer?.disconnect();
});

describe('two processor instances', () => {
  const a = { inst: undefined as unknown as Instance };
  const b = { inst: undefined as unknown as Instance };

  it('alert once for a cycle spread over partitions decoded by different instances', async () => {
    a.inst = startInstance('a');
    b.inst = startInstance('b');
    // Both own a share of the findings: the group has settled with both members.
    await waitFor(
      'both instances to own findings',
      () => (a.inst.status?.owned.length ?? 0) > 0 && (b.inst.status?.owned.length ?? 0) > 0 && a.inst.status!.owned.length + b.inst.status!.owned.length === WAIT_PARTITIONS,
      60_000,
    );

    // And the decode group has settled too: each instance decodes one partition of the spans topic.
    await waitFor('the decode group to settle with both instances', () => groupStable(`${run}.decode`, 2), 60_000);

    const cycle = lockCycle(`${run}-first`);
    await send(cycle);
    await waitFor('an alert', () => alerts.length > 0, 30_000);
    // Each instance decoded one of the two spans, and each sees the deadlock.
    await waitFor('both engines to see the deadlock', () => a.inst.status!.active === 1 && b.inst.status!.active === 1, 10_000);
    // The decode stages' counts come from their threads every 100 ms, so they may lag the engines.
    await waitFor('both decode stages to count what they decoded', () => a.inst.status!.decoded + b.inst.status!.decoded >= 2, 10_000);
    expect([a.inst.status!.decoded, b.inst.status!.decoded].sort()).toEqual([1, 1]);
    // Time for a second, wrong, alert to show up.
    await new Promise((ok) => setTimeout(ok, 3_000));
    expect(alerts).toEqual([{ key: cycle.fingerprint, change: 'opened', fingerprint: cycle.fingerprint, resources: [...cycle.locks].sort() }]);
    // The owner published it.
    const owner = [a.inst, b.inst].find((i) => i.status!.owned.includes(ownerPartition(cycle.fingerprint, WAIT_PARTITIONS)))!;
    expect(owner.status!.published).toBe(1);
  }, 120_000);

  it('after one instance is killed, the other takes its findings over and alerts once', async () => {
    const victim = a.inst;
    const survivor = b.inst;
    const victimOwned = victim.status!.owned;
    // A new cycle that the victim owns at the time of the kill.
    const cycle = cycleOwnedBy(victimOwned, `${run}-second`);
    victim.child.kill('SIGKILL');
    await send(cycle);

    await waitFor('the survivor to own every partition', () => survivor.status!.owned.length === WAIT_PARTITIONS, 60_000);
    await waitFor('the alert of the second cycle', () => alerts.some((x) => x.fingerprint === cycle.fingerprint), 60_000);
    await new Promise((ok) => setTimeout(ok, 3_000));
    expect(alerts.filter((x) => x.fingerprint === cycle.fingerprint)).toEqual([
      { key: cycle.fingerprint, change: 'opened', fingerprint: cycle.fingerprint, resources: [...cycle.locks].sort() },
    ]);
    // Both deadlocks are still open in the survivor's engine; the first was not announced again.
    expect(survivor.status!.active).toBe(2);
    expect(alerts).toHaveLength(2);
  }, 120_000);
});
