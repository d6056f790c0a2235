/**
 * The alert topic as the processor's memory: created compacted if it is missing (the latest alert of each
 * fingerprint is kept for good, older ones may be cleaned), and read back in full at start so the alert
 * ledger knows which deadlocks are announced open.
 *
 * Reading back uses a throwaway consumer group (kafkajs has no manual assignment) that reads every
 * partition from its start to the end offset it had when the read began, commits nothing, and is deleted
 * afterwards.
 */
import { randomUUID } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import type { Alert } from '../../../schemas/index.js';
import { WaitgraphError } from '../errors.js';
import { brokerError, type Logger } from '../io/index.js';
import { isAlertLike } from './ledger.js';

/** Creates the alert topic, compacted, unless it exists. Partitions: the broker's default. */
export async function ensureAlertTopic(kafka: Kafka, topic: string, logger: Logger): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    if ((await admin.listTopics()).includes(topic)) return;
    const created = await admin.createTopics({
      topics: [{ topic, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }],
      waitForLeaders: true,
    });
    if (created) logger.info('created the alert topic, compacted', { topic });
  } catch (err) {
    // Another instance may have created it in between.
    if ((err as { type?: string }).type !== 'TOPIC_ALREADY_EXISTS') throw brokerError(`create the alert topic ${topic}`, err);
  } finally {
    await admin.disconnect();
  }
}

/** Options of `readAlertTopic`. */
export interface ReadAlertTopicOptions {
  logger: Logger;
  /** Give up after this long, ms. Default 60000. */
  timeoutMs?: number;
}

/** Every alert on the topic when the read starts, oldest first per partition. */
export async function readAlertTopic(kafka: Kafka, topic: string, options: ReadAlertTopicOptions): Promise<Alert[]> {
  const { logger } = options;
  const admin = kafka.admin();
  await admin.connect();
  let ends: Map<number, bigint>;
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    // Partitions with nothing retained need no reading.
    ends = new Map(offsets.filter((p) => BigInt(p.high) > BigInt(p.low)).map((p) => [p.partition, BigInt(p.high)]));
  } finally {
    await admin.disconnect();
  }
  if (ends.size === 0) return [];

  const groupId = `waitgraph-ledger-${randomUUID()}`;
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100 });
  const alerts: Alert[] = [];
  let skipped = 0;
  const pending = new Set(ends.keys());
  let done!: () => void;
  const finished = new Promise<void>((ok) => (done = ok));
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const end = ends.get(batch.partition);
        for (const m of batch.messages) {
          if (end === undefined || BigInt(m.offset) >= end) break;
          try {
            const v: unknown = m.value ? JSON.parse(m.value.toString('utf8')) : undefined;
            if (isAlertLike(v)) alerts.push(v);
            else skipped++;
          } catch {
            skipped++;
          }
        }
        if (end !== undefined && BigInt(batch.lastOffset()) + 1n >= end) {
          pending.delete(batch.partition);
          if (pending.size === 0) done();
        }
      },
    });
    const timeoutMs = options.timeoutMs ?? 60_000;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((ok) => (timer = setTimeout(() => ok('timeout'), timeoutMs)));
    const result = await Promise.race([finished, timedOut]);
    clearTimeout(timer);
    if (result === 'timeout') {
      throw new WaitgraphError('broker', `reading back the alert topic ${topic} took over ${timeoutMs} ms (partitions ${[...pending].join(', ')} unread)`);
    }
  } finally {
    await consumer.disconnect().catch(() => {});
    const cleanup = kafka.admin();
    await cleanup
      .connect()
      .then(() => cleanup.deleteGroups([groupId]))
      .catch(() => {})
      .finally(() => cleanup.disconnect());
  }
  if (skipped > 0) logger.warn('alert topic: skipped messages that are not alerts', { topic, count: skipped });
  return alerts;
}
