/**
 * The alert tail: reads the alert topic from its start and keeps following it, handing every alert to an
 * announcement ledger, so that an instance that takes a finding over knows what the previous owner
 * already announced. `caughtUp()` resolves once everything on the topic when it was called has been read:
 * a new owner calls it before publishing anything.
 *
 * kafkajs has no manual assignment, so the tail is a consumer group of its own (a random id per tail) that
 * commits nothing: every start reads the topic again, which a compacted alert topic keeps small.
 */
import { randomUUID } from 'node:crypto';
import type { Consumer, Kafka } from 'kafkajs';
import type { Finding } from '../../../schemas/index.js';
import { WaitgraphError } from '../errors.js';
import { brokerError, kafkaClient, retrying, sleep, stderrLogger, type KafkaClientOptions, type Logger } from '../io/index.js';
import { isAlertLike } from '../run/ledger.js';
import { deleteGroup } from './topics.js';

/** A change of a finding as the ledger takes it. */
export interface Announcement {
  change: 'opened' | 'resolved' | 'potential';
  finding: Finding;
}

/** What has been announced: the alert ledger's interface (`isNew` before publishing, `record` after). */
export interface AnnouncementLedger {
  /** Whether this change of this finding has not been announced yet. */
  isNew(change: Announcement['change'], finding: Finding): boolean;
  /** Takes one announced change into account. */
  record(announcement: Announcement): void;
}

/** Options of `AlertTail`. */
export interface AlertTailOptions extends KafkaClientOptions {
  /** The alert topic. Required. */
  topic: string;
  /** Where the alerts read go. Required. */
  ledger: AnnouncementLedger;
  /** Logger. Default JSON lines on stderr. */
  logger?: Logger;
}

/** Parses an alert message (`isAlertLike`: a known `change` and a `finding` with a fingerprint). */
export function parseAnnouncement(value: Buffer | null): Announcement | undefined {
  if (!value) return undefined;
  try {
    const v: unknown = JSON.parse(value.toString('utf8'));
    if (isAlertLike(v)) return v;
  } catch {}
  return undefined;
}

/** Follows the alert topic into a ledger. */
export class AlertTail {
  private readonly kafka: Kafka;
  private readonly consumer: Consumer;
  private readonly topic: string;
  private readonly ledger: AnnouncementLedger;
  private readonly logger: Logger;
  private readonly abort = new AbortController();
  private readonly groupId = `waitgraph-alert-tail-${randomUUID()}`;
  /** Next offset to read, by partition. */
  private readonly next = new Map<number, bigint>();
  private skipped = 0;
  private started = false;
  private shutdownPromise: Promise<void> | undefined;

  constructor(options: AlertTailOptions) {
    if (!options.topic) throw new WaitgraphError('bad-config', 'AlertTail: topic is required');
    this.topic = options.topic;
    this.ledger = options.ledger;
    this.logger = options.logger ?? stderrLogger;
    this.kafka = kafkaClient({ ...options, logger: this.logger });
    this.consumer = this.kafka.consumer({ groupId: this.groupId, maxWaitTimeInMs: 100, retry: { initialRetryTime: 200, maxRetryTime: 5000, retries: 8 } });
  }

  /** Starts reading from the start of the topic. */
  async start(): Promise<void> {
    if (this.started) throw new WaitgraphError('bad-usage', 'AlertTail: start() called twice');
    this.started = true;
    try {
      await retrying(
        'AlertTail: connect',
        async () => {
          await this.consumer.connect();
          await this.consumer.subscribe({ topics: [this.topic], fromBeginning: true });
        },
        { signal: this.abort.signal, logger: this.logger },
      );
      await this.consumer.run({
        autoCommit: false,
        eachBatch: async ({ batch }) => {
          for (const m of batch.messages) {
            const a = parseAnnouncement(m.value);
            if (a) this.ledger.record(a);
            else this.skipped++;
          }
          this.next.set(batch.partition, BigInt(batch.lastOffset()) + 1n);
        },
      });
    } catch (err) {
      await this.shutdown();
      throw err instanceof WaitgraphError ? err : brokerError('AlertTail: start', err);
    }
  }

  /** Messages on the topic that were not alerts. */
  get skippedMessages(): number {
    return this.skipped;
  }

  /**
   * Resolves once every alert that was on the topic when called has been read (retrying through broker
   * trouble); rejects after `timeoutMs` (default 30000).
   */
  async caughtUp(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const ends = await retrying('AlertTail: read the end offsets', () => this.endOffsets(), { signal: this.abort.signal, logger: this.logger });
    for (;;) {
      const behind = [...ends].filter(([p, end]) => (this.next.get(p) ?? 0n) < end);
      if (behind.length === 0) return;
      if (this.abort.signal.aborted) throw new WaitgraphError('io', 'AlertTail: shut down while catching up', { retriable: false });
      if (Date.now() > deadline) {
        throw new WaitgraphError('broker', `AlertTail: ${this.topic} partitions ${behind.map(([p]) => p).join(', ')} not read within ${timeoutMs} ms`);
      }
      await sleep(20, this.abort.signal);
    }
  }

  /** Stops reading and removes the tail's group. Idempotent. */
  shutdown(): Promise<void> {
    this.shutdownPromise ??= (async () => {
      this.abort.abort();
      await this.consumer.disconnect().catch(() => {});
      await deleteGroup(this.kafka, this.groupId);
    })();
    return this.shutdownPromise;
  }

  /** The end offsets of the partitions that hold anything (a compacted or emptied partition may hold nothing). */
  private async endOffsets(): Promise<Map<number, bigint>> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      if (!(await admin.listTopics()).includes(this.topic)) return new Map();
      const offsets = await admin.fetchTopicOffsets(this.topic);
      return new Map(offsets.filter((p) => BigInt(p.high) > BigInt(p.low)).map((p) => [p.partition, BigInt(p.high)]));
    } finally {
      await admin.disconnect();
    }
  }
}
