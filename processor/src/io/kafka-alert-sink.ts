/**
 * The Kafka alert sink: publishes one JSON message per change of a finding (opened, resolved) to the alert
 * topic, keyed by the finding's fingerprint, so every change of one finding lands on one partition, in
 * order, and a compacted topic keeps each finding's latest state.
 *
 * The producer is idempotent (acks from all in-sync replicas, no duplicates from its own retries, which go
 * on through a broker outage for as long as it lasts). `publish` resolves only once the broker has the
 * messages: an alert is never dropped while the sink runs. Keeping a restart from announcing the
 * same deadlock twice is the caller's part (it decides which changes to publish).
 */
import { Partitioners, type Kafka, type Producer } from 'kafkajs';
import type { Finding } from '../../../schemas/index.js';
import { WaitgraphError } from '../errors.js';
import { brokerError, IDEMPOTENT_PRODUCER_RETRY, kafkaClient, retrying, type BackoffOptions, type KafkaClientOptions } from './kafka-client.js';
import { stderrLogger, type Logger } from './log.js';

/** The default alert topic. */
export const DEFAULT_ALERT_TOPIC = 'waitgraph.alerts';

/** Headers of every alert message. */
export const ALERT_HEADERS = {
  /** `opened`, `resolved` or `potential`. */
  CHANGE: 'waitgraph.change',
  /** The finding's kind: `deadlock` or `potential-deadlock`. */
  KIND: 'waitgraph.kind',
  /** Always `application/json`. */
  CONTENT_TYPE: 'content-type',
} as const;

/** Kinds of change of a finding: a deadlock opened or resolved, a potential deadlock seen. */
export const FINDING_CHANGES = ['opened', 'resolved', 'potential'] as const;
/** A kind of change of a finding. */
export type FindingChangeKind = (typeof FINDING_CHANGES)[number];

/** One change of a finding, as the detector reports it. */
export interface AlertChange {
  change: FindingChangeKind;
  finding: Finding;
}

/** Options of `KafkaAlertSink`. */
export interface KafkaAlertSinkOptions extends KafkaClientOptions {
  /** The alert topic. Default `waitgraph.alerts`. */
  topic?: string;
  /**
   * The JSON body of an alert. Default `{ change, finding }`. The message key is the fingerprint whatever
   * this returns.
   */
  render?: (change: AlertChange) => unknown;
  /** Logger. Default JSON lines on stderr. */
  logger?: Logger;
  /** Backoff between attempts to publish. Default 200 ms doubling to 5 s. */
  backoff?: BackoffOptions;
}

/** Publishes finding changes to a Kafka topic. */
export class KafkaAlertSink {
  /** The alert topic. */
  readonly topic: string;
  private readonly kafka: Kafka;
  private readonly producer: Producer;
  private readonly render: (change: AlertChange) => unknown;
  private readonly logger: Logger;
  private readonly backoff: BackoffOptions | undefined;
  private readonly abort = new AbortController();
  private readonly inFlight = new Set<Promise<unknown>>();
  private started = false;
  private shutdownPromise: Promise<void> | undefined;

  constructor(options: KafkaAlertSinkOptions) {
    this.topic = options.topic ?? DEFAULT_ALERT_TOPIC;
    if (!this.topic) throw new WaitgraphError('bad-config', 'KafkaAlertSink: empty topic name');
    this.render = options.render ?? ((c) => ({ change: c.change, finding: c.finding }));
    this.logger = options.logger ?? stderrLogger;
    this.backoff = options.backoff;
    this.kafka = kafkaClient({ ...options, logger: this.logger });
    this.producer = this.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      retry: IDEMPOTENT_PRODUCER_RETRY,
      // The Java client's partitioner: the same fingerprint goes to the same partition from any client.
      createPartitioner: Partitioners.DefaultPartitioner,
    });
  }

  /** Connects the producer. */
  async start(): Promise<void> {
    if (this.started) throw new WaitgraphError('bad-usage', 'KafkaAlertSink: start() called twice');
    this.started = true;
    try {
      await retrying('KafkaAlertSink: connect', () => this.producer.connect(), { signal: this.abort.signal, logger: this.logger, backoff: this.backoff });
    } catch (err) {
      throw brokerError('KafkaAlertSink: connect', err);
    }
  }

  /**
   * Publishes the changes, in order, and resolves once the broker has acknowledged them all. Retries
   * retriable failures until it succeeds; rejects only on shutdown, or if the broker refuses for good (a
   * message over the size limit, a topic the client may not write).
   */
  async publish(changes: readonly AlertChange[]): Promise<void> {
    if (changes.length === 0) return;
    if (!this.started || this.shutdownPromise) throw new WaitgraphError('bad-usage', 'KafkaAlertSink: publish() before start() or after shutdown()');
    const messages = changes.map((c) => ({
      key: c.finding.fingerprint,
      value: JSON.stringify(this.render(c)),
      headers: {
        [ALERT_HEADERS.CHANGE]: c.change,
        [ALERT_HEADERS.KIND]: c.finding.kind,
        [ALERT_HEADERS.CONTENT_TYPE]: 'application/json',
      },
    }));
    const send = retrying(
      `KafkaAlertSink: publish to ${this.topic}`,
      () => this.producer.send({ topic: this.topic, messages, acks: -1 }),
      { signal: this.abort.signal, logger: this.logger, backoff: this.backoff },
    );
    this.inFlight.add(send);
    try {
      await send;
    } finally {
      this.inFlight.delete(send);
    }
  }

  /** Resolves when every publish in progress has settled. */
  async forceFlush(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
  }

  /**
   * Waits for publishes in progress, up to `graceMs` (default 10 s), then disconnects. A publish still
   * waiting for an unreachable broker after that is abandoned: it may reject or never settle, so a caller
   * that shuts down while the broker is away must not wait on it without a deadline. Idempotent.
   */
  shutdown(graceMs = 10_000): Promise<void> {
    this.shutdownPromise ??= (async () => {
      const grace = new Promise<void>((ok) => setTimeout(ok, graceMs).unref());
      await Promise.race([this.forceFlush(), grace]);
      this.abort.abort();
      await this.producer.disconnect().catch((err: unknown) => {
        this.logger.warn('KafkaAlertSink: disconnect failed', { error: String(err) });
      });
    })();
    return this.shutdownPromise;
  }
}
