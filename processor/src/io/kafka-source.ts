/**
 * The Kafka source: reads the topics that the OpenTelemetry Collector's kafka exporter writes, in a consumer
 * group, and hands the decoded messages to the processor batch by batch.
 *
 * What the exporter writes (contrib `exporter/kafkaexporter`): traces to `otlp_spans` and logs to
 * `otlp_logs`, encoded `otlp_proto` (a serialized ExportTraceServiceRequest / ExportLogsServiceRequest, the
 * default) or `otlp_json`. A message holds anything from one span (recent exporters split a request into one
 * message per trace or per span) to a whole request. Messages have no key unless `partition_traces_by_id`
 * (or `partition_logs_by_trace_id`) is set; then the key is the trace id, as 32 lowercase hex characters
 * (exporters before the franz-go rewrite wrote the 16 raw bytes: both are read).
 *
 * Delivery: for each fetched batch (one topic partition), every message is decoded with the caller's
 * `decode`; the good ones go to `apply` in one call, and only after `apply` resolves (and the poison
 * messages of the batch are on the dead-letter topic) are the batch's offsets committed. So a crash never
 * commits an event that was not applied: after a restart it is read again (at-least-once). `apply` is never
 * called concurrently, and calls for one partition come in offset order.
 *
 * Commits leave the hot path: an applied batch's offset goes to a commit loop that sends the newest applied
 * offset of every partition in one request, one request at a time, so the next batch never waits for a
 * commit round trip (under load a commit takes tens of milliseconds, once per partition and fetch). On a
 * graceful shutdown the loop sends what was applied before the consumer leaves the group.
 *
 * Replay: with `startAtTimestampMs`, each partition is read, the first time the group assigns it, from its
 * first message at or after that time instead of the committed offset, and `onAssign` tells the caller
 * where each new partition starts and where it ended when the source started (so the caller knows when
 * the replay has caught up).
 *
 * Failures: a message `decode` rejects with a `bad-input` error is poison: counted, logged (the first with
 * a sample, then a summary at most once a minute), copied to the dead-letter topic with the error in its
 * headers, and skipped. A retriable failure of `apply` or of the broker is retried with backoff, holding the
 * batch, for as long as it takes. Anything else is a bug: the source stops and `stopped()` rejects with it.
 */
import type { Consumer, EachBatchPayload, IHeaders, Kafka, KafkaMessage, Producer } from 'kafkajs';
import { Partitioners } from 'kafkajs';
import { WaitgraphError } from '../errors.js';
import { brokerError, IDEMPOTENT_PRODUCER_RETRY, kafkaClient, retrying, sleep, type BackoffOptions, type KafkaClientOptions } from './kafka-client.js';
import { stderrLogger, type Logger } from './log.js';

/** The metrics a source updates (`ProcessorMetrics` has them), as the source uses them. */
export interface SourceMetrics {
  badInput: { inc(labels: { reason: string }, value?: number): void };
  consumerLag: { set(labels: { topic: string; partition: string }, value: number): void };
}

/** Signals the source reads. */
export const SIGNALS = ['traces', 'logs'] as const;
/** A signal: what a topic carries. */
export type Signal = (typeof SIGNALS)[number];

/** Payload encodings of the Collector's kafka exporter that the source takes. */
export const PAYLOAD_ENCODINGS = ['otlp_proto', 'otlp_json'] as const;
/** A payload encoding. */
export type PayloadEncoding = (typeof PAYLOAD_ENCODINGS)[number];

/** One topic to read, and what is in it. */
export interface SourceTopic {
  topic: string;
  signal: Signal;
  /** Default `otlp_proto`, as the exporter's. */
  encoding?: PayloadEncoding;
}

/** The exporter's default topics: `otlp_spans` and `otlp_logs`, both `otlp_proto`. */
export const DEFAULT_SOURCE_TOPICS: readonly SourceTopic[] = [
  { topic: 'otlp_spans', signal: 'traces', encoding: 'otlp_proto' },
  { topic: 'otlp_logs', signal: 'logs', encoding: 'otlp_proto' },
];

/** The default dead-letter topic. */
export const DEFAULT_DEAD_LETTER_TOPIC = 'waitgraph.deadletter';

/** Headers the source adds to a dead-letter copy (the original headers are kept). */
export const DEAD_LETTER_HEADERS = {
  ERROR: 'waitgraph.error',
  ERROR_CODE: 'waitgraph.error.code',
  TOPIC: 'waitgraph.source.topic',
  PARTITION: 'waitgraph.source.partition',
  OFFSET: 'waitgraph.source.offset',
  TIMESTAMP: 'waitgraph.source.timestamp',
} as const;

/** One message as the source hands it to `decode`. */
export interface SourceMessage {
  topic: string;
  partition: number;
  /** The offset, as kafkajs gives it (a decimal string: offsets are 64-bit). */
  offset: string;
  /** `topic/partition@offset`: a name for error messages and logs. */
  name: string;
  signal: Signal;
  encoding: PayloadEncoding;
  key: Buffer | null;
  /** The trace id named by the key (`partition_traces_by_id`), as 32 lowercase hex characters. */
  traceId: string | undefined;
  value: Buffer;
  headers: IHeaders;
  /** The record's timestamp, unix ms (the exporter's send time, or the broker's append time). */
  timestampMs: number;
}

/** Life stages of a source; `failed` when a failure it cannot retry stopped it. */
export type SourceStatus = 'new' | 'starting' | 'running' | 'stopping' | 'stopped' | 'failed';

/** A message and what `decode` made of it. */
export interface DecodedMessage<T> {
  message: SourceMessage;
  value: T;
}

/** Where a batch comes from. */
export interface BatchInfo {
  topic: string;
  partition: number;
  /** The partition's high watermark when the batch was fetched. */
  highWatermark: string;
  /** The offset of the batch's last message. */
  lastOffset: string;
  /** When the source took the batch from the fetch, unix ms (before decoding): where detection latency starts. */
  receivedAtMs: number;
}

/** A partition given to this source by the group, as `onAssign` reports it. */
export interface AssignedPartition {
  topic: string;
  partition: number;
  /**
   * Where the source reads from: the replay offset (with `startAtTimestampMs`), else the group's committed
   * offset, else the start or the end of the partition (`fromBeginning`). Undefined for a topic that did
   * not exist when the source started.
   */
  startOffset: string | undefined;
  /** The partition's end offset (next offset to be written) when the source started. */
  endOffsetAtStart: string;
}

/** Options of `KafkaSource`. */
export interface KafkaSourceOptions<T> extends KafkaClientOptions {
  /** Turns a message into what `apply` takes. Throws a `bad-input` WaitgraphError for poison. Required. */
  decode: (message: SourceMessage) => T;
  /** Applies a batch's decoded messages; offsets are committed after it resolves. Required. */
  apply: (messages: DecodedMessage<T>[], batch: BatchInfo) => Promise<void>;
  /**
   * Awaited before each commit of applied offsets: for work `apply` left running that must be done first
   * (alerts of the applied events out). A rejection is a bug: the source stops. Default none.
   */
  beforeCommit?: () => Promise<void>;
  /** Topics to read. Default `DEFAULT_SOURCE_TOPICS`. */
  topics?: readonly SourceTopic[];
  /** Consumer group. Default `waitgraph`. */
  groupId?: string;
  /** Where a new group starts: at the oldest retained message (true) or at the end (false). Default true. */
  fromBeginning?: boolean;
  /** Dead-letter topic; null to only count and log poison. Default `waitgraph.deadletter`. */
  deadLetterTopic?: string | null;
  /** Metrics to update (`bad_input_total`, `consumer_lag`). Default none. */
  metrics?: SourceMetrics;
  /** Logger. Default JSON lines on stderr. */
  logger?: Logger;
  /** Backoff of retries of `apply`, dead-letter writes and commits. Default 200 ms doubling to 5 s. */
  backoff?: BackoffOptions;
  /** Consumer session timeout, ms. Default 30000. */
  sessionTimeoutMs?: number;
  /** Longest a fetch waits for new data, ms: bounds idle latency and shutdown time. Default 250. */
  maxWaitTimeMs?: number;
  /** Most bytes fetched per partition and fetch. Default 1048576 (1 MiB). */
  maxBytesPerPartition?: number;
  /**
   * Replay from a point in time: the first time the group gives this source a partition, it reads from
   * the partition's first message at or after this unix ms (offsets by timestamp), whatever offset the
   * group committed. This is how a restarted processor rebuilds its state from a retained window. Default:
   * none, read from the committed offset.
   */
  startAtTimestampMs?: number;
  /**
   * Called after each join of the group with the partitions that came new to this source (maybe none), and
   * where each starts and ends. Default none.
   */
  onAssign?: (partitions: AssignedPartition[]) => void;
  /** Called when `status` changes. Default none. */
  onStatus?: (status: SourceStatus) => void;
}

/** The shortest time between two log lines about poison messages. */
const POISON_LOG_INTERVAL_MS = 60_000;
/** Bytes of a poison message shown in its log line. */
const POISON_SAMPLE_BYTES = 96;

/** A consumer-group source of OTLP messages from Kafka. See the module comment for delivery and failures. */
export class KafkaSource<T> {
  private readonly kafka: Kafka;
  private readonly consumer: Consumer;
  private producer: Producer | undefined;
  private readonly topics: Map<string, Required<SourceTopic>>;
  private readonly decode: KafkaSourceOptions<T>['decode'];
  private readonly apply: KafkaSourceOptions<T>['apply'];
  private readonly beforeCommit: KafkaSourceOptions<T>['beforeCommit'];
  private readonly deadLetterTopic: string | null;
  private readonly fromBeginning: boolean;
  private readonly metrics: SourceMetrics | undefined;
  private readonly logger: Logger;
  private readonly backoff: BackoffOptions | undefined;
  private readonly abort = new AbortController();
  private state: SourceStatus = 'new';
  private readonly onStatus: ((status: SourceStatus) => void) | undefined;
  private shutdownPromise: Promise<void> | undefined;
  private readonly done: Promise<void>;
  private settle!: (err?: unknown) => void;
  private poisonCount = 0;
  private poisonUnlogged = 0;
  private lastPoisonLogAt = 0;
  private readonly startAtTimestampMs: number | undefined;
  private readonly onAssign: ((partitions: AssignedPartition[]) => void) | undefined;
  /** Per `topic/partition`: where reading starts, whether that needs a seek, and the end offset at start. */
  private readonly startOffsets = new Map<string, { start: string; seek: boolean; end: string }>();
  private readonly groupId: string;
  /** Every partition the group ever gave this source, and those it has now (`topic/partition`). */
  private readonly assigned = new Set<string>();
  private owned = new Set<string>();
  /** Set when shutting down: batches finishing now are neither applied nor committed. */
  private closing = false;
  /** Per `topic/partition`: the newest applied offset not yet committed (the next offset to read). */
  private readonly pendingCommits = new Map<string, { topic: string; partition: number; offset: string }>();
  private commitLoop: Promise<void> | undefined;
  /** Set when a commit found the group rebalancing: the loop waits for the next join. */
  private commitsWaitForJoin = false;

  constructor(options: KafkaSourceOptions<T>) {
    if (typeof options.decode !== 'function' || typeof options.apply !== 'function') {
      throw new WaitgraphError('bad-config', 'KafkaSource: decode and apply are required');
    }
    const topics = options.topics ?? DEFAULT_SOURCE_TOPICS;
    if (topics.length === 0) throw new WaitgraphError('bad-config', 'KafkaSource: no topics to read');
    this.topics = new Map();
    for (const t of topics) {
      const encoding = t.encoding ?? 'otlp_proto';
      if (!SIGNALS.includes(t.signal)) throw new WaitgraphError('bad-config', `KafkaSource: topic ${t.topic}: unknown signal ${t.signal}`);
      if (!PAYLOAD_ENCODINGS.includes(encoding)) {
        throw new WaitgraphError('bad-config', `KafkaSource: topic ${t.topic}: unknown encoding ${encoding} (takes ${PAYLOAD_ENCODINGS.join(', ')})`);
      }
      if (this.topics.has(t.topic)) throw new WaitgraphError('bad-config', `KafkaSource: topic ${t.topic} given twice`);
      this.topics.set(t.topic, { topic: t.topic, signal: t.signal, encoding });
    }
    this.decode = options.decode;
    this.apply = options.apply;
    this.beforeCommit = options.beforeCommit;
    this.deadLetterTopic = options.deadLetterTopic === undefined ? DEFAULT_DEAD_LETTER_TOPIC : options.deadLetterTopic;
    this.fromBeginning = options.fromBeginning ?? true;
    this.metrics = options.metrics;
    this.logger = options.logger ?? stderrLogger;
    this.backoff = options.backoff;
    this.startAtTimestampMs = options.startAtTimestampMs;
    if (this.startAtTimestampMs !== undefined && !(Number.isFinite(this.startAtTimestampMs) && this.startAtTimestampMs >= 0)) {
      throw new WaitgraphError('bad-config', `KafkaSource: startAtTimestampMs must be a unix time in ms, not ${this.startAtTimestampMs}`);
    }
    this.onAssign = options.onAssign;
    this.onStatus = options.onStatus;
    this.kafka = kafkaClient({ ...options, logger: this.logger });
    this.groupId = options.groupId ?? 'waitgraph';
    this.consumer = this.kafka.consumer({
      groupId: this.groupId,
      sessionTimeout: options.sessionTimeoutMs ?? 30_000,
      maxWaitTimeInMs: options.maxWaitTimeMs ?? 250,
      maxBytesPerPartition: options.maxBytesPerPartition ?? 1_048_576,
      retry: { initialRetryTime: 200, maxRetryTime: 5000, retries: 8 },
    });
    this.done = new Promise<void>((ok, fail) => {
      this.settle = (err) => (err === undefined ? ok() : fail(err));
    });
    // Nobody may be waiting on stopped(); a fatal error is logged in any case.
    this.done.catch(() => {});
  }

  /**
   * Connects, subscribes and starts consuming; resolves once the consumer runs (before it has joined the
   * group). While the broker cannot be reached it keeps trying, with backoff, until `shutdown()`.
   */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new WaitgraphError('bad-usage', `KafkaSource: start() called when ${this.state}`);
    this.setState('starting');
    const ctl = { signal: this.abort.signal, logger: this.logger, backoff: this.backoff };
    try {
      if (this.deadLetterTopic !== null) {
        const producer = this.kafka.producer({
          idempotent: true,
          retry: IDEMPOTENT_PRODUCER_RETRY,
          createPartitioner: Partitioners.DefaultPartitioner,
        });
        this.producer = producer;
        await retrying('KafkaSource: connect the dead-letter producer', () => producer.connect(), ctl);
      }
      this.consumer.on(this.consumer.events.CRASH, ({ payload }) => {
        if (!payload.restart) void this.fail(payload.error);
      });
      await retrying('KafkaSource: read start offsets', () => this.readStartOffsets(), ctl);
      // Emitted after the join and before the first fetch of the new assignment: a seek here is in time.
      this.consumer.on(this.consumer.events.GROUP_JOIN, ({ payload }) => this.joined(payload.memberAssignment));
      await retrying(
        'KafkaSource: connect',
        async () => {
          await this.consumer.connect();
          await this.consumer.subscribe({ topics: [...this.topics.keys()], fromBeginning: this.fromBeginning });
        },
        ctl,
      );
      await this.consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: 1,
        eachBatch: (payload) => this.onBatch(payload),
      });
      if ((this.state as SourceStatus) === 'starting') this.setState('running');
    } catch (err) {
      await this.shutdown();
      throw err instanceof WaitgraphError ? err : brokerError('KafkaSource: start', err);
    }
  }

  private setState(state: SourceStatus): void {
    this.state = state;
    this.onStatus?.(state);
  }

  /** Where the source is in its life: for `/healthz`. */
  get status(): SourceStatus {
    return this.state;
  }

  /**
   * Resolves when the source has been shut down; rejects with the error that stopped it, if a bug (a
   * non-retriable failure of `apply` or `decode`) or a permanent broker refusal did.
   */
  stopped(): Promise<void> {
    return this.done;
  }

  /** The end offsets at start (and, with `startAtTimestampMs`, the replay offsets) of every partition. */
  private async readStartOffsets(): Promise<void> {
    if (this.startAtTimestampMs === undefined && !this.onAssign) return;
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const existing = new Set(await admin.listTopics());
      const topics = [...this.topics.keys()].filter((t) => existing.has(t));
      // A topic that does not exist yet has nothing to replay: it is created empty when first used.
      if (topics.length === 0) return;
      const committed = this.startAtTimestampMs === undefined ? await admin.fetchOffsets({ groupId: this.groupId, topics }) : [];
      for (const topic of topics) {
        const ends = await admin.fetchTopicOffsets(topic);
        const replay = this.startAtTimestampMs === undefined ? undefined : await admin.fetchTopicOffsetsByTimestamp(topic, this.startAtTimestampMs);
        const commits = committed.find((c) => c.topic === topic)?.partitions ?? [];
        for (const { partition, low, high } of ends) {
          const replayAt = replay?.find((p) => p.partition === partition)?.offset;
          const commit = commits.find((p) => p.partition === partition)?.offset;
          const start =
            replayAt ?? (commit !== undefined && BigInt(commit) >= 0n ? commit : this.fromBeginning ? low : high);
          this.startOffsets.set(`${topic}/${partition}`, { start, seek: replayAt !== undefined, end: high });
        }
      }
    } finally {
      await admin.disconnect();
    }
  }

  private joined(assignment: Record<string, number[]>): void {
    const fresh: AssignedPartition[] = [];
    this.owned = new Set();
    for (const [topic, partitions] of Object.entries(assignment)) {
      for (const partition of partitions) {
        const id = `${topic}/${partition}`;
        this.owned.add(id);
        if (this.assigned.has(id)) continue;
        this.assigned.add(id);
        const known = this.startOffsets.get(id);
        if (known?.seek) this.consumer.seek({ topic, partition, offset: known.start });
        fresh.push({ topic, partition, startOffset: known?.start, endOffsetAtStart: known?.end ?? '0' });
      }
    }
    this.onAssign?.(fresh);
    // Offsets of partitions that went to another member are theirs to commit now.
    for (const id of this.pendingCommits.keys()) if (!this.owned.has(id)) this.pendingCommits.delete(id);
    this.commitsWaitForJoin = false;
    this.kickCommits();
  }

  /** Messages found to be poison since the start. */
  get poisonMessages(): number {
    return this.poisonCount;
  }

  /**
   * Stops consuming after the batch in progress (whose retries are abandoned: its offsets stay
   * uncommitted) and disconnects, waiting at most `graceMs` (default 10 s): a batch whose `apply` waits on
   * an unreachable broker would otherwise hold the shutdown forever. Idempotent.
   */
  shutdown(graceMs = 10_000): Promise<void> {
    this.shutdownPromise ??= this.close(undefined, graceMs);
    return this.shutdownPromise;
  }

  private async close(err: unknown, graceMs: number): Promise<void> {
    this.setState('stopping');
    this.closing = true;
    const deadline = Date.now() + graceMs;
    // What was applied is committed before the consumer leaves, so a restart re-reads less.
    if (err === undefined) await Promise.race([this.commitsSent(), sleep(graceMs)]);
    this.abort.abort();
    const disconnected = Promise.allSettled([this.consumer.disconnect(), this.producer?.disconnect()]);
    const timedOut = new Promise<'timeout'>((ok) => setTimeout(() => ok('timeout'), Math.max(0, deadline - Date.now())).unref());
    const results = await Promise.race([disconnected, timedOut]);
    this.setState(err === undefined ? 'stopped' : 'failed');
    if (results === 'timeout') {
      this.logger.warn(`KafkaSource: the batch in progress did not finish within ${graceMs} ms; left behind uncommitted`);
    } else {
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) this.logger.warn('KafkaSource: disconnect failed', { error: String(failed.reason) });
    }
    this.settle(err);
  }

  private async fail(err: unknown): Promise<void> {
    this.logger.error('KafkaSource: stopped by a failure it cannot retry', {
      error: err instanceof Error ? err.message : String(err),
    });
    this.shutdownPromise ??= this.close(err, 10_000);
    await this.shutdownPromise;
  }

  private async onBatch(payload: EachBatchPayload): Promise<void> {
    try {
      await this.processBatch(payload);
    } catch (err) {
      // Retries abandoned by a shutdown end the batch quietly; its offsets stay uncommitted.
      if (this.abort.signal.aborted) return;
      throw err;
    }
  }

  private async processBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, resolveOffset, heartbeat, isRunning, isStale } = payload;
    const receivedAtMs = Date.now();
    const live = () => isRunning() && !isStale() && !this.closing && !this.abort.signal.aborted;
    const topic = this.topics.get(batch.topic);
    if (!topic || batch.messages.length === 0) return;
    const { good, poison } = this.decodeMessages(topic, batch.partition, batch.messages);
    const last = batch.lastOffset();
    const info: BatchInfo = { topic: batch.topic, partition: batch.partition, highWatermark: batch.highWatermark, lastOffset: last, receivedAtMs };
    const ctl = { signal: this.abort.signal, logger: this.logger, backoff: this.backoff, onWait: heartbeat };
    if (poison.length > 0) await this.deadLetter(poison, ctl);
    if (good.length > 0 && live()) await retrying(`KafkaSource: apply ${batch.topic}/${batch.partition}`, () => this.apply(good, info), ctl);
    // A batch cut short by a rebalance or a shutdown is left uncommitted: its messages are read again.
    if (!live()) return;
    resolveOffset(last);
    this.queueCommit(batch.topic, batch.partition, (BigInt(last) + 1n).toString());
    this.metrics?.consumerLag.set({ topic: batch.topic, partition: String(batch.partition) }, Number(batch.offsetLag()));
  }

  /** The batch's messages, decoded, and the poison among them. */
  private decodeMessages(
    topic: Required<SourceTopic>,
    partition: number,
    raws: readonly KafkaMessage[],
  ): { good: DecodedMessage<T>[]; poison: { message: SourceMessage; error: WaitgraphError }[] } {
    const good: DecodedMessage<T>[] = [];
    const poison: { message: SourceMessage; error: WaitgraphError }[] = [];
    for (const raw of raws) {
      const message = toSourceMessage(topic, partition, raw);
      try {
        if (raw.value === null) throw new WaitgraphError('bad-input', `${message.name}: the message has no value (a tombstone)`);
        good.push({ message, value: this.decode(message) });
      } catch (err) {
        // Only input the decoder rejects is poison; any other exception is a bug, and stops the source.
        if (!(err instanceof WaitgraphError) || err.code !== 'bad-input') throw err;
        poison.push({ message, error: err });
      }
    }
    return { good, poison };
  }

  private queueCommit(topic: string, partition: number, offset: string): void {
    this.pendingCommits.set(`${topic}/${partition}`, { topic, partition, offset });
    this.kickCommits();
  }

  /** Starts the commit loop unless it runs, has nothing to send, or waits for the group to settle. */
  private kickCommits(): void {
    if (this.commitLoop || this.commitsWaitForJoin || this.pendingCommits.size === 0 || this.abort.signal.aborted) return;
    this.commitLoop = this.commitPending().finally(() => {
      this.commitLoop = undefined;
      this.kickCommits();
    });
  }

  /** Resolves when no commit is in flight and none is due (or the loop waits for a join). */
  private async commitsSent(): Promise<void> {
    while (this.commitLoop) await this.commitLoop;
  }

  private async commitPending(): Promise<void> {
    const ctl = { signal: this.abort.signal, logger: this.logger, backoff: this.backoff };
    while (this.pendingCommits.size > 0 && !this.abort.signal.aborted) {
      const offsets = [...this.pendingCommits.values()];
      this.pendingCommits.clear();
      try {
        await this.beforeCommit?.();
        // Only partitions still owned: a commit for one that moved would overwrite its new owner's.
        await retrying('KafkaSource: commit', () => this.consumer.commitOffsets(offsets.filter((o) => this.owned.has(`${o.topic}/${o.partition}`))), ctl);
      } catch (err) {
        if (this.abort.signal.aborted) return;
        if (!isRebalance(err)) return void this.fail(err);
        // The group is rebalancing (kafkajs rejoins on its own): send them after the join, if still ours.
        for (const o of offsets) {
          const id = `${o.topic}/${o.partition}`;
          if (!this.pendingCommits.has(id)) this.pendingCommits.set(id, o);
        }
        this.commitsWaitForJoin = true;
        return;
      }
    }
  }

  private async deadLetter(
    poison: { message: SourceMessage; error: WaitgraphError }[],
    ctl: Parameters<typeof retrying>[2],
  ): Promise<void> {
    this.poisonCount += poison.length;
    this.metrics?.badInput.inc({ reason: 'decode' }, poison.length);
    this.logPoison(poison[0]!, poison.length);
    if (!this.producer || this.deadLetterTopic === null) return;
    const producer = this.producer;
    const messages = poison.map(({ message, error }) => ({
      key: message.key,
      value: message.value,
      headers: {
        ...message.headers,
        [DEAD_LETTER_HEADERS.ERROR]: error.message,
        [DEAD_LETTER_HEADERS.ERROR_CODE]: error.code,
        [DEAD_LETTER_HEADERS.TOPIC]: message.topic,
        [DEAD_LETTER_HEADERS.PARTITION]: String(message.partition),
        [DEAD_LETTER_HEADERS.OFFSET]: message.offset,
        [DEAD_LETTER_HEADERS.TIMESTAMP]: String(message.timestampMs),
      },
    }));
    const topic = this.deadLetterTopic;
    try {
      await retrying(`KafkaSource: dead-letter to ${topic}`, () => producer.send({ topic, messages, acks: -1 }), ctl);
    } catch (err) {
      // A dead-letter topic that refuses the copy for good must not stop the stream: the poison was counted
      // and logged, which is all the source can still do.
      if (this.abort.signal.aborted) throw err;
      this.logger.error(`KafkaSource: could not write ${messages.length} poison message(s) to ${topic}; skipped`, {
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }

  private logPoison(first: { message: SourceMessage; error: WaitgraphError }, count: number): void {
    const now = Date.now();
    if (this.lastPoisonLogAt !== 0 && now - this.lastPoisonLogAt < POISON_LOG_INTERVAL_MS) {
      this.poisonUnlogged += count;
      return;
    }
    const { message, error } = first;
    this.logger.warn('KafkaSource: poison message skipped', {
      input: message.name,
      error: error.message,
      bytes: message.value.length,
      sample: message.value.subarray(0, POISON_SAMPLE_BYTES).toString('hex'),
      deadLetterTopic: this.deadLetterTopic,
      more: count - 1 + this.poisonUnlogged,
      total: this.poisonCount,
    });
    this.lastPoisonLogAt = now;
    this.poisonUnlogged = 0;
  }
}

/** kafkajs error types that mean the group moved on (kafkajs rejoins); anything else from a commit is real. */
const REBALANCE_TYPES = new Set(['REBALANCE_IN_PROGRESS', 'ILLEGAL_GENERATION', 'UNKNOWN_MEMBER_ID', 'NOT_COORDINATOR_FOR_GROUP', 'NOT_COORDINATOR']);

/** Whether an error (or one it wraps) says the consumer group is rebalancing. */
function isRebalance(err: unknown): boolean {
  for (let e = err as { type?: string; cause?: unknown; originalError?: unknown } | undefined, depth = 0; e && depth < 8; depth++) {
    if (e.type !== undefined && REBALANCE_TYPES.has(e.type)) return true;
    e = (e.originalError ?? e.cause) as typeof e;
  }
  return false;
}

function toSourceMessage(topic: Required<SourceTopic>, partition: number, raw: KafkaMessage): SourceMessage {
  return {
    topic: topic.topic,
    partition,
    offset: raw.offset,
    name: `${topic.topic}/${partition}@${raw.offset}`,
    signal: topic.signal,
    encoding: topic.encoding,
    key: raw.key,
    traceId: traceIdFromKey(raw.key),
    value: raw.value ?? Buffer.alloc(0),
    headers: raw.headers ?? {},
    timestampMs: Number(raw.timestamp),
  };
}

const HEX32 = /^[0-9a-fA-F]{32}$/;

/**
 * The trace id a message key names, as 32 lowercase hex characters: the key is either that text (current
 * exporters) or the 16 raw bytes (older ones). Undefined for any other key, or none.
 */
export function traceIdFromKey(key: Buffer | null): string | undefined {
  if (!key) return undefined;
  if (key.length === 32) {
    const text = key.toString('latin1');
    return HEX32.test(text) ? text.toLowerCase() : undefined;
  }
  return key.length === 16 ? key.toString('hex') : undefined;
}
