/**
 * The decode stage: stateless, any number of instances in one consumer group (`waitgraph-decode`). It reads
 * the Collector's topics (`otlp_spans`, `otlp_logs`), decodes each message, keeps what detection needs
 * (`selectWaitSpans`) and republishes it as one wait-record message per fetched batch to the wait-record
 * topic (`waitgraph.waits`). Source offsets are committed only after the broker has the wait records
 * (the Kafka source commits after `apply` resolves), so a crash re-reads and re-publishes: at-least-once,
 * which detection absorbs (the engine takes duplicates as no change).
 *
 * The wait-record message is keyed by its source partition, so the records of one source partition stay in
 * order on one wait-record partition; detection reads every partition anyway and does not rely on order.
 */
import { Partitioners, type Kafka, type Producer } from 'kafkajs';
import { DEFAULT_WAITS_TOPIC, WAIT_RECORD_CONTENT_TYPE } from '../../../schemas/index.js';
import { WaitgraphError } from '../errors.js';
import {
  DEFAULT_SOURCE_TOPICS,
  IDEMPOTENT_PRODUCER_RETRY,
  KafkaSource,
  kafkaClient,
  retrying,
  stderrLogger,
  type BatchInfo,
  type DecodedMessage,
  type KafkaClientOptions,
  type Logger,
  type SourceMessage,
  type SourceStatus,
  type SourceTopic,
} from '../io/index.js';
import type { DecodedBatch } from '../model/span.js';
import { decodeOtlpPayload } from '../run/decode-input.js';
import type { ThreadMetrics } from '../run/threads.js';
import { ensureTopics } from './topics.js';
import { cutOtlpTracesProto } from './wait-cut.js';
import { encodeWaitRecordBatch, WAIT_SPAN_ATTRIBUTES, WaitRecordBuilder, type CutSpans, type WaitFilterOptions, type WaitRecordCounts } from './wait-records.js';

/** The default consumer group of the decode stage. */
export const DEFAULT_DECODE_GROUP = 'waitgraph-decode';

/** Options of `DecodeStage`. Every field is optional but the brokers. */
export interface DecodeStageOptions extends KafkaClientOptions {
  /** Topics to read. Default `otlp_spans` and `otlp_logs`, `otlp_proto`. */
  topics?: readonly SourceTopic[];
  /** Consumer group. Default `waitgraph-decode`. */
  groupId?: string;
  /** The wait-record topic. Default `waitgraph.waits`. */
  waitsTopic?: string;
  /** Partitions of the wait-record topic, when this stage creates it. Default 6. */
  waitsPartitions?: number;
  /** Retention of the wait-record topic, when this stage creates it: the longest replay a detection instance can do, ms. Default 3600000 (1 h). */
  waitsRetentionMs?: number;
  /** What to keep. Default: see `WaitFilterOptions`. */
  filter?: WaitFilterOptions;
  /** Largest wait-record message, bytes (a bigger batch is cut in several). Default 900000, under the broker's 1 MiB limit. */
  maxMessageBytes?: number;
  /** Dead-letter topic of poison input; null for none. Default `waitgraph.deadletter`. */
  deadLetterTopic?: string | null;
  /** Where a new group starts: the oldest retained input (true) or the end (false). Default true. */
  fromBeginning?: boolean;
  /** Longest a fetch waits for new data, ms. Default 100. */
  maxWaitTimeMs?: number;
  /** Most bytes fetched per partition and fetch. Default 1048576. */
  maxBytesPerPartition?: number;
  /** Consumer session timeout, ms: how long a dead instance's partitions wait for the others. Default 30000. */
  sessionTimeoutMs?: number;
  /** Metrics to update (spans in, bad input, consumer lag). Default none. */
  metrics?: DecodeStageMetrics;
  /** Hears of each change of the Kafka source's life stage. */
  onStatus?: (status: SourceStatus) => void;
  /** Logger. Default JSON lines on stderr. */
  logger?: Logger;
}

/**
 * Decodes one Collector message by its topic's signal and encoding, reading of the span attributes only
 * those the wait records keep.
 */
export function decodeSourceMessage(m: SourceMessage): DecodedBatch {
  return decodeOtlpPayload(m.signal, m.encoding === 'otlp_json' ? 'json' : 'proto', m.value, m.name, WAIT_SPAN_ATTRIBUTES);
}

/** The metrics a decode stage updates (`ProcessorMetrics` has them): those a thread's stage relays. */
export type DecodeStageMetrics = ThreadMetrics;

/** A source message as the decode stage decodes it: OTLP protobuf traces cut already, anything else whole. */
type StageInput = { cut: CutSpans; decoded?: undefined } | { cut?: undefined; decoded: DecodedBatch };

/** The decode stage. */
export class DecodeStage {
  private readonly kafka: Kafka;
  private readonly source: KafkaSource<StageInput>;
  private readonly producer: Producer;
  private readonly builder: WaitRecordBuilder;
  private readonly waitsTopic: string;
  private readonly waitsPartitions: number;
  private readonly waitsRetentionMs: number;
  private readonly maxMessageBytes: number;
  private readonly metrics: DecodeStageMetrics | undefined;
  private readonly logger: Logger;
  private readonly abort = new AbortController();
  private messagesOut = 0;
  private shutdownPromise: Promise<void> | undefined;

  constructor(options: DecodeStageOptions) {
    this.logger = options.logger ?? stderrLogger;
    this.kafka = kafkaClient({ ...options, logger: this.logger });
    this.waitsTopic = options.waitsTopic ?? DEFAULT_WAITS_TOPIC;
    this.waitsPartitions = options.waitsPartitions ?? 6;
    this.waitsRetentionMs = options.waitsRetentionMs ?? 3_600_000;
    this.maxMessageBytes = options.maxMessageBytes ?? 900_000;
    if (!(Number.isInteger(this.waitsPartitions) && this.waitsPartitions >= 1)) {
      throw new WaitgraphError('bad-config', `DecodeStage: waitsPartitions must be a whole number >= 1, got ${this.waitsPartitions}`);
    }
    if (!(this.maxMessageBytes >= 10_000)) throw new WaitgraphError('bad-config', `DecodeStage: maxMessageBytes must be >= 10000, got ${this.maxMessageBytes}`);
    this.metrics = options.metrics;
    this.builder = new WaitRecordBuilder(options.filter);
    this.producer = this.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      retry: IDEMPOTENT_PRODUCER_RETRY,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    this.source = new KafkaSource<StageInput>({
      kafka: this.kafka,
      logger: this.logger,
      topics: options.topics ?? DEFAULT_SOURCE_TOPICS,
      groupId: options.groupId ?? DEFAULT_DECODE_GROUP,
      deadLetterTopic: options.deadLetterTopic,
      fromBeginning: options.fromBeginning,
      maxWaitTimeMs: options.maxWaitTimeMs ?? 100,
      maxBytesPerPartition: options.maxBytesPerPartition,
      sessionTimeoutMs: options.sessionTimeoutMs,
      metrics: options.metrics,
      onStatus: options.onStatus,
      // The common input, OTLP protobuf traces, decoded and cut in one go (the builder remembers the open
      // spans it passes as it cuts); the others decoded, and cut as they are applied.
      decode: (m): StageInput =>
        m.signal === 'traces' && m.encoding !== 'otlp_json' ? { cut: cutOtlpTracesProto(m.value, m.name, this.builder) } : { decoded: decodeSourceMessage(m) },
      apply: (messages, info) => this.apply(messages, info),
    });
  }

  /** Creates the wait-record topic if missing, connects the producer and starts consuming. */
  async start(): Promise<void> {
    const ctl = { signal: this.abort.signal, logger: this.logger };
    await retrying(
      'DecodeStage: create the wait-record topic',
      () =>
        ensureTopics(this.kafka, [{ topic: this.waitsTopic, partitions: this.waitsPartitions, config: { 'retention.ms': String(this.waitsRetentionMs) } }], this.logger),
      ctl,
    );
    await retrying('DecodeStage: connect the producer', () => this.producer.connect(), ctl);
    await this.source.start();
  }

  /** What the stage read and kept since it started. */
  get counts(): Readonly<WaitRecordCounts> & { messagesOut: number } {
    return { ...this.builder.counts, messagesOut: this.messagesOut };
  }

  /** The Kafka source's life stage, for `/healthz`. */
  get status(): SourceStatus {
    return this.source.status;
  }

  /** Resolves when the stage stopped; rejects with the failure that stopped it. */
  stopped(): Promise<void> {
    return this.source.stopped();
  }

  /** Stops consuming (the batch in progress is left uncommitted) and disconnects. Idempotent. */
  shutdown(): Promise<void> {
    this.shutdownPromise ??= (async () => {
      this.abort.abort();
      await this.source.shutdown();
      await this.producer.disconnect().catch((err: unknown) => this.logger.warn('DecodeStage: disconnect failed', { error: String(err) }));
    })();
    return this.shutdownPromise;
  }

  private async apply(messages: DecodedMessage<StageInput>[], info: BatchInfo): Promise<void> {
    const out: Buffer[] = [];
    for (const { message, value } of messages) {
      if (value.cut !== undefined) {
        this.metrics?.spansReceived.inc(value.cut.spansIn);
        this.builder.addCut(value.cut, message.timestampMs);
      } else {
        this.metrics?.spansReceived.inc(value.decoded.spans.length);
        this.builder.add(value.decoded, message.timestampMs);
      }
      if (this.builder.approximateBytes >= this.maxMessageBytes * 0.8) out.push(encodeWaitRecordBatch(this.builder.take()!));
    }
    const last = this.builder.take();
    if (last) out.push(encodeWaitRecordBatch(last));
    if (out.length === 0) return;
    const key = `${info.topic}/${info.partition}`;
    await this.producer.send({
      topic: this.waitsTopic,
      acks: -1,
      messages: out.map((value) => ({ key, value, headers: { 'content-type': WAIT_RECORD_CONTENT_TYPE } })),
    });
    this.messagesOut += out.length;
  }
}
