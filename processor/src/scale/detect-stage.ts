/**
 * The detection stage of a scaled-out processor: one in every instance. It reads every partition of the
 * wait-record topic (a consumer group of its own, committing nothing, so every start replays the retained
 * window), holds the whole wait graph in one Detector, and announces only the findings it owns.
 *
 * Announcing: each change of a finding the detector reports is noted as the finding's wanted state. It is
 * published when this instance owns the finding (`Ownership`) and the ledger has not seen it (the alert
 * topic, followed by `AlertTail`, is the record of what any instance announced). When ownership changes
 * (an instance joined or died), nothing is published until the tail has read the alert topic to its end;
 * then every wanted state this instance now owns and the ledger lacks goes out. So a finding is announced
 * once by its owner, and a dead owner's findings are taken over without repeats and without gaps.
 *
 * Steps (a batch, a timer tick, a reconciliation) run one at a time: the engine is not reentrant.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import { DEFAULT_WAITS_TOPIC } from '../../../schemas/index.js';
import { Detector, type DetectorOptions, type FindingChange } from '../engine/index.js';
import { WaitgraphError } from '../errors.js';
import {
  brokerError,
  DEFAULT_ALERT_TOPIC,
  KafkaAlertSink,
  kafkaClient,
  retrying,
  stderrLogger,
  type KafkaAlertSinkOptions,
  type KafkaClientOptions,
  type Logger,
  type ProcessorMetrics,
} from '../io/index.js';
import { AlertLedger } from '../run/ledger.js';
import { DEFAULT_MAX_SPANS } from '../run/pipeline.js';
import { AlertTail, type Announcement, type AnnouncementLedger } from './alert-tail.js';
import { Ownership } from './ownership.js';
import { deleteGroup, ensureTopics } from './topics.js';
import { decodeWaitRecordBatch } from './wait-records.js';

/** Options of `DetectStage`. Every field is optional but the brokers. */
export interface DetectStageOptions extends KafkaClientOptions {
  /** This instance's name, in logs and consumer ids. Default `<host>-<pid>`. */
  instanceId?: string;
  /** The wait-record topic. Default `waitgraph.waits`. */
  waitsTopic?: string;
  /** The alert topic. Default `waitgraph.alerts`. */
  alertTopic?: string;
  /** The group the detection instances share findings in. Default `waitgraph-detect`. */
  ownershipGroup?: string;
  /** How long a dead instance keeps its findings, ms. Default 10000. */
  sessionTimeoutMs?: number;
  /** Options of the engine. */
  detector?: DetectorOptions;
  /** The staleness time: a wait or hold without a fresh snapshot for this long is not trusted, ms. Default 30000. */
  staleAfterMs?: number;
  /** How much history the graph keeps, ms (see `Detector.forget`). Default 600000. */
  historyMs?: number;
  /** Most spans the graph holds (see `Detector.forget`). Default `DEFAULT_MAX_SPANS` (run/pipeline.ts). */
  maxSpans?: number;
  /** How often stale spans are expired when no input comes, ms. Default 1000. */
  expireEveryMs?: number;
  /** How an alert message reads. Default `{ change, finding }`. */
  render?: KafkaAlertSinkOptions['render'];
  /** Publishes announcements; resolves once they are durable. Default: a Kafka alert sink on `alertTopic`. */
  publish?: (announcements: Announcement[]) => Promise<void>;
  /** The record of what was announced. Default an empty `AlertLedger`, filled from the alert topic. */
  ledger?: AnnouncementLedger;
  /** Longest a fetch of wait records waits for new data, ms. Default 100. */
  maxWaitTimeMs?: number;
  /** Metrics to update (graph size, findings, detection latency). Default none. */
  metrics?: ProcessorMetrics;
  /** Logger. Default JSON lines on stderr. */
  logger?: Logger;
}

/** What the stage has taken in and given out since it started. */
export interface DetectStageCounts {
  /** Wait-record messages applied. */
  messages: number;
  /** Spans the decode stage read to make them (before its filter). */
  sourceSpans: number;
  /** Spans applied to the engine. */
  spans: number;
  /** Wait-record messages that could not be read (skipped). */
  poison: number;
  /** Announcements published by this instance. */
  published: number;
}

/** The detection stage. */
export class DetectStage {
  readonly instanceId: string;
  private readonly kafka: Kafka;
  private readonly consumer: Consumer;
  private readonly groupId: string;
  private readonly waitsTopic: string;
  private readonly alertTopic: string;
  private readonly detector: Detector;
  private readonly ownership: Ownership;
  private readonly tail: AlertTail;
  private readonly ledger: AnnouncementLedger;
  private readonly sink: KafkaAlertSink | undefined;
  private readonly publishFn: (announcements: Announcement[]) => Promise<void>;
  private readonly staleAfterNs: number;
  private readonly historyNs: number;
  private readonly maxSpans: number;
  private readonly expireEveryMs: number;
  private readonly metrics: ProcessorMetrics | undefined;
  /** When the graph gauges were last set, unix ns. */
  private gaugesAt = 0;
  private readonly logger: Logger;
  private readonly abort = new AbortController();
  /** The latest change of each finding that is not known to be announced yet. */
  private readonly pending = new Map<string, Announcement>();
  /** One step at a time. */
  private chain: Promise<void> = Promise.resolve();
  /** Publishing waits for the first catch-up with the alert topic. */
  private ready = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly stats: DetectStageCounts = { messages: 0, sourceSpans: 0, spans: 0, poison: 0, published: 0 };
  private started = false;
  private shutdownPromise: Promise<void> | undefined;

  constructor(options: DetectStageOptions) {
    this.instanceId = options.instanceId ?? `${hostname()}-${process.pid}`;
    this.logger = options.logger ?? stderrLogger;
    this.waitsTopic = options.waitsTopic ?? DEFAULT_WAITS_TOPIC;
    this.alertTopic = options.alertTopic ?? DEFAULT_ALERT_TOPIC;
    const staleAfterMs = options.staleAfterMs ?? 30_000;
    if (!(staleAfterMs > 0)) throw new WaitgraphError('bad-config', `DetectStage: staleAfterMs must be > 0, got ${staleAfterMs}`);
    this.staleAfterNs = staleAfterMs * 1e6;
    this.historyNs = (options.historyMs ?? 600_000) * 1e6;
    this.maxSpans = options.maxSpans ?? DEFAULT_MAX_SPANS;
    this.expireEveryMs = options.expireEveryMs ?? 1_000;
    this.metrics = options.metrics;
    this.detector = new Detector(options.detector);
    this.kafka = kafkaClient({ ...options, clientId: options.clientId ?? `waitgraph-${this.instanceId}`, logger: this.logger });
    this.groupId = `waitgraph-detect-${this.instanceId}-${randomUUID()}`;
    this.consumer = this.kafka.consumer({
      groupId: this.groupId,
      maxWaitTimeInMs: options.maxWaitTimeMs ?? 100,
      retry: { initialRetryTime: 200, maxRetryTime: 5000, retries: 8 },
    });
    this.ledger = options.ledger ?? new AlertLedger();
    this.tail = new AlertTail({ kafka: this.kafka, topic: this.alertTopic, ledger: this.ledger, logger: this.logger });
    this.ownership = new Ownership({
      kafka: this.kafka,
      topic: this.waitsTopic,
      groupId: options.ownershipGroup,
      sessionTimeoutMs: options.sessionTimeoutMs,
      logger: this.logger,
      onChange: () => this.step(() => this.reconcile()),
    });
    if (options.publish) {
      this.publishFn = options.publish;
    } else {
      const sink = new KafkaAlertSink({ kafka: this.kafka, topic: this.alertTopic, render: options.render, logger: this.logger });
      this.sink = sink;
      this.publishFn = (a) => sink.publish(a);
    }
  }

  /** Creates the topics if missing, starts following the alert topic, joins the ownership group and replays the wait records. */
  async start(): Promise<void> {
    if (this.started) throw new WaitgraphError('bad-usage', 'DetectStage: start() called twice');
    this.started = true;
    const ctl = { signal: this.abort.signal, logger: this.logger };
    try {
      await retrying(
        'DetectStage: create topics',
        () => ensureTopics(this.kafka, [{ topic: this.waitsTopic, partitions: 6 }, { topic: this.alertTopic, config: { 'cleanup.policy': 'compact' } }], this.logger),
        ctl,
      );
      await this.sink?.start();
      await this.tail.start();
      await retrying(
        'DetectStage: connect',
        async () => {
          await this.consumer.connect();
          await this.consumer.subscribe({ topics: [this.waitsTopic], fromBeginning: true });
        },
        ctl,
      );
      await this.consumer.run({ autoCommit: false, partitionsConsumedConcurrently: 1, eachBatch: (p) => this.onBatch(p) });
      await this.ownership.start();
    } catch (err) {
      await this.shutdown();
      throw err instanceof WaitgraphError ? err : brokerError('DetectStage: start', err);
    }
    this.timer = setInterval(() => this.step(() => this.tick()), this.expireEveryMs);
    this.timer.unref();
  }

  /** What the stage has taken in and given out. */
  get counts(): Readonly<DetectStageCounts> {
    return { ...this.stats };
  }

  /** The partitions of the ownership group this instance holds. */
  get ownedPartitions(): readonly number[] {
    return this.ownership.partitions;
  }

  /** Whether this instance owns a finding now. */
  owns(fingerprint: string): boolean {
    return this.ownership.owns(fingerprint);
  }

  /** The engine's findings, as this instance sees them (every instance sees them all). */
  findings() {
    return this.detector.findings();
  }

  /** Leaves the ownership group first (the others take over at once), then stops reading and publishing. Idempotent. */
  shutdown(): Promise<void> {
    this.shutdownPromise ??= (async () => {
      this.abort.abort();
      if (this.timer) clearInterval(this.timer);
      await this.ownership.shutdown();
      await this.consumer.disconnect().catch(() => {});
      await this.chain.catch(() => {});
      await this.tail.shutdown();
      await this.sink?.shutdown();
      await deleteGroup(this.kafka, this.groupId);
    })();
    return this.shutdownPromise;
  }

  /** Runs `fn` after every step before it; a failing step is logged and does not stop the next. */
  private step(fn: () => void | Promise<void>): Promise<void> {
    const run = this.chain.then(fn);
    this.chain = run.catch((err: unknown) => {
      if (!this.abort.signal.aborted) this.logger.error('DetectStage: a step failed', { error: err instanceof Error ? err.message : String(err) });
    });
    return run;
  }

  private async onBatch({ batch, heartbeat }: EachBatchPayload): Promise<void> {
    if (batch.messages.length === 0) return;
    await this.step(() => {
      let latestObserved = 0;
      for (const m of batch.messages) {
        if (!m.value) continue;
        try {
          const r = decodeWaitRecordBatch(m.value, `${batch.topic}/${batch.partition}@${m.offset}`);
          this.detector.addBatch(r.batch, r.observedAtMs * 1e6);
          this.stats.messages++;
          this.stats.sourceSpans += r.sourceSpans;
          this.stats.spans += r.batch.spans.length;
          if (r.observedAtMs > latestObserved) latestObserved = r.observedAtMs;
        } catch (err) {
          if (!(err instanceof WaitgraphError) || err.code !== 'bad-input') throw err;
          if (this.stats.poison++ === 0) this.logger.warn('DetectStage: skipped a wait-record message it cannot read', { error: err.message });
          this.metrics?.badInput.inc({ reason: 'decode' });
        }
      }
      this.metrics?.consumerLag.set({ topic: batch.topic, partition: String(batch.partition) }, Number(batch.offsetLag()));
      return this.detectAndAnnounce(latestObserved);
    });
    await heartbeat();
  }

  private tick(): Promise<void> {
    return this.detectAndAnnounce(0);
  }

  /** Expires stale spans, detects, notes the changes, and publishes those this instance owns. */
  private async detectAndAnnounce(observedAtMs: number): Promise<void> {
    const now = Date.now() * 1e6;
    this.detector.expire(now, this.staleAfterNs);
    const forgotten = this.detector.forget(now - this.historyNs, this.maxSpans);
    const m = this.metrics;
    if (m !== undefined) {
      m.forgot(forgotten, this.detector.historyStart, now);
      // Graph gauges, as the single-instance processor keeps them: at most once a second.
      if (now - this.gaugesAt >= 1e9) {
        this.gaugesAt = now;
        m.graph(this.detector.stats());
      }
    }
    const changes = this.detector.detect();
    for (const c of changes) this.note(c, observedAtMs);
    if (this.ready && this.pending.size > 0) await this.publishOwned();
  }

  private note(c: FindingChange, observedAtMs: number): void {
    this.pending.set(c.finding.fingerprint, { change: c.change, finding: c.finding });
    this.metrics?.findings.inc({ kind: c.finding.kind, state: c.change === 'resolved' ? 'resolved' : 'active' });
    if (observedAtMs > 0) this.metrics?.detectionLatency.observe(Math.max(0, Date.now() - observedAtMs) / 1000);
  }

  /** After an ownership change: read the alert topic to its end, then publish what is now owned and unannounced. */
  private async reconcile(): Promise<void> {
    this.ready = false;
    if (!this.ownership.valid()) return;
    await this.tail.caughtUp();
    this.ready = true;
    await this.publishOwned();
  }

  private async publishOwned(): Promise<void> {
    const out: Announcement[] = [];
    for (const [fp, a] of this.pending) {
      // Announced by anyone (this instance, or an owner before it): nothing left to do.
      if (!this.ledger.isNew(a.change, a.finding)) {
        this.pending.delete(fp);
        continue;
      }
      if (this.ownership.owns(fp)) out.push(a);
    }
    if (out.length === 0) return;
    await this.publishFn(out);
    for (const a of out) {
      this.ledger.record(a);
      this.pending.delete(a.finding.fingerprint);
    }
    this.stats.published += out.length;
  }
}
