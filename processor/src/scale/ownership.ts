/**
 * Finding ownership: which live detection instance publishes the alerts of a finding.
 *
 * Every detection instance finds every deadlock (each holds the whole wait graph); exactly one of them may
 * announce it. The instances join one consumer group (`waitgraph-detect`) on the wait-record topic with a
 * consumer that never reads (all its partitions stay paused): the group is used only for its membership.
 * The broker's coordinator hands each member some partitions; a finding is owned by the member holding
 * partition `ownerPartition(fingerprint, P)`. When an instance dies its session times out, the group
 * rebalances and its partitions, so its findings, move to the others; a new instance takes some over.
 *
 * Safety: ownership is held as a lease. It lapses the moment a rebalance starts (kafkajs `REBALANCING`) and
 * when no heartbeat has succeeded for `sessionTimeoutMs - 2 * heartbeatIntervalMs`: by then the coordinator
 * may have given the partitions to another member. A publish already in flight when the lease lapses can
 * still land; the alert ledger (read back from the alert topic before a new owner publishes) keeps the next
 * owner from repeating it.
 */
import type { Consumer, Kafka } from 'kafkajs';
import { WaitgraphError } from '../errors.js';
import { brokerError, kafkaClient, retrying, stderrLogger, type KafkaClientOptions, type Logger } from '../io/index.js';

/** The default group of the detection instances. */
export const DEFAULT_OWNERSHIP_GROUP = 'waitgraph-detect';

/**
 * The partition whose holder owns a finding: FNV-1a (32-bit) of the fingerprint, modulo the partition
 * count. Any stable hash works, as long as every instance uses the same one.
 */
export function ownerPartition(fingerprint: string, partitions: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < fingerprint.length; i++) {
    h ^= fingerprint.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % partitions;
}

/** Options of `Ownership`. */
export interface OwnershipOptions extends KafkaClientOptions {
  /** The topic whose partitions are shared out. Required. */
  topic: string;
  /** The group. Default `waitgraph-detect`. */
  groupId?: string;
  /** Session timeout, ms: how long a dead instance keeps its findings. Default 10000 (the broker's least is 6000). */
  sessionTimeoutMs?: number;
  /** Heartbeat interval, ms. Default 1000. */
  heartbeatIntervalMs?: number;
  /** Called after each change of the owned partitions (including to none). Default none. */
  onChange?: (owned: readonly number[], partitions: number) => void;
  /** Clock, unix ms. Default `Date.now`. */
  now?: () => number;
  /** Logger. Default JSON lines on stderr. */
  logger?: Logger;
}

/** This instance's share of the findings. */
export class Ownership {
  private readonly kafka: Kafka;
  private readonly consumer: Consumer;
  private readonly topic: string;
  private readonly leaseMs: number;
  private readonly onChange: OwnershipOptions['onChange'];
  private readonly now: () => number;
  private readonly logger: Logger;
  private readonly abort = new AbortController();
  private owned = new Set<number>();
  private partitionCount = 0;
  private lastBeat = 0;
  /** Bumped by every join and every lapse, so a join's late answer cannot undo a later lapse. */
  private generation = 0;
  private started = false;
  private shutdownPromise: Promise<void> | undefined;

  constructor(options: OwnershipOptions) {
    if (!options.topic) throw new WaitgraphError('bad-config', 'Ownership: topic is required');
    const session = options.sessionTimeoutMs ?? 10_000;
    const beat = options.heartbeatIntervalMs ?? 1_000;
    if (!(session >= 3 * beat)) throw new WaitgraphError('bad-config', `Ownership: sessionTimeoutMs (${session}) must be at least 3 heartbeats (${beat} ms)`);
    this.topic = options.topic;
    this.leaseMs = session - 2 * beat;
    this.onChange = options.onChange;
    this.now = options.now ?? Date.now;
    this.logger = options.logger ?? stderrLogger;
    this.kafka = kafkaClient({ ...options, logger: this.logger });
    this.consumer = this.kafka.consumer({
      groupId: options.groupId ?? DEFAULT_OWNERSHIP_GROUP,
      sessionTimeout: session,
      heartbeatInterval: beat,
      // The member never fetches: each idle turn of kafkajs's loop sleeps this long, then heartbeats.
      maxWaitTimeInMs: Math.min(500, beat),
      retry: { initialRetryTime: 200, maxRetryTime: 5000, retries: 8 },
    });
  }

  /** Joins the group; resolves once the consumer runs (ownership comes with the first join). */
  async start(): Promise<void> {
    if (this.started) throw new WaitgraphError('bad-usage', 'Ownership: start() called twice');
    this.started = true;
    const { HEARTBEAT, GROUP_JOIN, REBALANCING, CRASH, STOP } = this.consumer.events;
    this.consumer.on(HEARTBEAT, () => {
      this.lastBeat = this.now();
    });
    const lapse = () => {
      this.generation++;
      this.set(new Set(), this.partitionCount);
    };
    this.consumer.on(REBALANCING, lapse);
    this.consumer.on(STOP, lapse);
    this.consumer.on(CRASH, ({ payload }) => {
      this.logger.warn('Ownership: the group consumer crashed', { error: payload.error.message, restart: payload.restart });
      lapse();
    });
    this.consumer.on(GROUP_JOIN, ({ payload }) => {
      this.consumer.pause([{ topic: this.topic }]);
      const generation = ++this.generation;
      this.lastBeat = this.now();
      const mine = payload.memberAssignment[this.topic] ?? [];
      void this.partitionsOfTopic().then(
        (n) => {
          if (generation === this.generation) this.set(new Set(mine), n);
        },
        (err) => this.logger.warn('Ownership: could not read the partition count', { error: String(err) }),
      );
    });
    const ctl = { signal: this.abort.signal, logger: this.logger };
    try {
      await retrying(
        'Ownership: join',
        async () => {
          await this.consumer.connect();
          await this.consumer.subscribe({ topics: [this.topic], fromBeginning: false });
        },
        ctl,
      );
      await this.consumer.run({ autoCommit: false, eachBatch: async () => {} });
      // Paused for good (again at each join, before the first fetch of an assignment): the member holds
      // partitions, it never reads them.
      this.consumer.pause([{ topic: this.topic }]);
    } catch (err) {
      await this.shutdown();
      throw err instanceof WaitgraphError ? err : brokerError('Ownership: start', err);
    }
  }

  /** Whether this instance owns the finding now: it holds the finding's partition and its lease is fresh. */
  owns(fingerprint: string): boolean {
    return this.valid() && this.owned.has(ownerPartition(fingerprint, this.partitionCount));
  }

  /** Whether the lease is fresh (a recent heartbeat) and some partition is held. */
  valid(): boolean {
    return this.partitionCount > 0 && this.owned.size > 0 && this.now() - this.lastBeat < this.leaseMs;
  }

  /** The partitions held, sorted. */
  get partitions(): readonly number[] {
    return [...this.owned].sort((a, b) => a - b);
  }

  /** How many partitions the topic has (0 before the first join). */
  get partitionTotal(): number {
    return this.partitionCount;
  }

  /** Leaves the group (its partitions move to the others at once). Idempotent. */
  shutdown(): Promise<void> {
    this.shutdownPromise ??= (async () => {
      this.abort.abort();
      this.generation++;
      this.set(new Set(), this.partitionCount);
      await this.consumer.disconnect().catch((err: unknown) => this.logger.warn('Ownership: disconnect failed', { error: String(err) }));
    })();
    return this.shutdownPromise;
  }

  private async partitionsOfTopic(): Promise<number> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const { topics } = await admin.fetchTopicMetadata({ topics: [this.topic] });
      return topics[0]?.partitions.length ?? 0;
    } finally {
      await admin.disconnect();
    }
  }

  private set(owned: Set<number>, partitions: number): void {
    const same = partitions === this.partitionCount && owned.size === this.owned.size && [...owned].every((p) => this.owned.has(p));
    this.owned = owned;
    this.partitionCount = partitions;
    if (same) return;
    this.logger.info('Ownership: partitions held', { topic: this.topic, partitions: this.partitions, of: partitions });
    this.onChange?.(this.partitions, partitions);
  }
}
