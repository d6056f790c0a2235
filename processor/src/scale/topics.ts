/**
 * The topics of a scaled-out processor, created on first use when they are missing: the wait-record topic
 * (partitioned, retained for the replay window) and the alert topic (compacted: the latest alert of each
 * fingerprint is kept for good). An existing topic is left as it is: an operator's settings win.
 */
import type { Kafka } from 'kafkajs';
import { brokerError, type Logger } from '../io/index.js';

/** How to create a missing topic. */
export interface TopicSpec {
  topic: string;
  /** Partitions. Default: the broker's `num.partitions`. */
  partitions?: number;
  /** Topic configuration, e.g. `{ 'retention.ms': '3600000' }`. */
  config?: Record<string, string>;
}

/** Creates each topic that does not exist yet; another instance creating it at the same time is fine. */
export async function ensureTopics(kafka: Kafka, specs: readonly TopicSpec[], logger: Logger): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = specs.filter((s) => !existing.has(s.topic));
    if (missing.length === 0) return;
    await admin.createTopics({
      topics: missing.map((s) => ({
        topic: s.topic,
        ...(s.partitions !== undefined ? { numPartitions: s.partitions } : {}),
        configEntries: Object.entries(s.config ?? {}).map(([name, value]) => ({ name, value })),
      })),
      waitForLeaders: true,
    });
    for (const s of missing) logger.info('created topic', { topic: s.topic, partitions: s.partitions, config: s.config });
  } catch (err) {
    if ((err as { type?: string }).type !== 'TOPIC_ALREADY_EXISTS') throw brokerError('create topics', err);
  } finally {
    await admin.disconnect();
  }
}

/** Deletes a consumer group this process made for itself (best effort: an empty group also expires on its own). */
export async function deleteGroup(kafka: Kafka, groupId: string): Promise<void> {
  const admin = kafka.admin();
  await admin
    .connect()
    .then(() => admin.deleteGroups([groupId]))
    .catch(() => {})
    .finally(() => admin.disconnect());
}
