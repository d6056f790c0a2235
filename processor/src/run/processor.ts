/**
 * `waitgraph run` as an object: the long-running processor around the engine. It wires the inputs (the
 * OTLP/HTTP receiver, always; the Kafka source, when brokers are given) to the detection pipeline, and the
 * pipeline to the alert sinks (the Kafka alert topic, the JSON-lines file, stdout), and serves `/metrics`
 * and `/healthz` beside the receiver.
 *
 * Start: the receiver listens first (so `/healthz` answers, 503, while the rest starts); then what was
 * announced before is read back (the alert topic with Kafka, else the alert file); then the Kafka source
 * joins its group and replays the retained window while the pipeline warms up; `/healthz` turns 200 when
 * warm-up is over. Shutdown: stop taking input, let the batch in progress finish, send what is pending,
 * disconnect; all within a deadline.
 */
import type { Kafka } from 'kafkajs';
import type { Alert } from '../../../schemas/index.js';
import { ansi, plain } from '../cli/report.js';
import { WaitgraphError } from '../errors.js';
import {
  kafkaClient,
  OtlpHttpReceiver,
  ProcessorMetrics,
  retrying,
  type SourceStatus,
} from '../io/index.js';
import { readAlertTopic, ensureAlertTopic } from './alert-topic.js';
import { AlertLedger, readAlertFile } from './ledger.js';
import type { RunLogger } from './logger.js';
import type { ResolvedRunOptions } from './options.js';
import { DetectionPipeline } from './pipeline.js';
import { HTTP_LANE } from './replay.js';
import { FileAlertSink, KafkaTopicAlertSink, StdoutAlertSink, type AlertSink } from './sinks.js';
import { WAITGRAPH_VERSION } from './version.js';
import { KafkaThreadInput } from './kafka-thread.js';
import { WaitInputCutter } from './wait-input.js';

/** Where the processor listens, once started. */
export interface ProcessorAddress {
  /** `http://host:port`: the OTLP/HTTP receiver, `/metrics` and `/healthz`. */
  url: string;
  port: number;
}

/** What the processor needs besides its options. */
export interface ProcessorContext {
  logger: RunLogger;
  /** Where alerts go on stdout. Default process.stdout. */
  stdout?: (s: string) => void;
  /** Colours in the text alerts on stdout. Default false. */
  color?: boolean;
  /** More sinks, after the configured ones (the demo watches alerts through one). */
  extraSinks?: AlertSink[];
}

/** Phases of the processor's life, as `/healthz` reports them. */
export type ProcessorPhase = 'new' | 'starting' | 'warming-up' | 'running' | 'stopping' | 'stopped';

/** The processor. */
export class WaitgraphProcessor {
  /** Its metrics (served at `/metrics`). */
  readonly metrics = new ProcessorMetrics();
  private readonly logger: RunLogger;
  private readonly receiver: OtlpHttpReceiver;
  private readonly kafka: Kafka | undefined;
  private source: KafkaThreadInput | undefined;
  private readonly cutter: WaitInputCutter;
  private pipeline: DetectionPipeline | undefined;
  private sinks: AlertSink[] = [];
  private phase: ProcessorPhase = 'new';
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly abort = new AbortController();
  private shutdownPromise: Promise<boolean> | undefined;
  private readonly done: Promise<void>;
  private settle!: (err?: unknown) => void;
  private lastStats = { at: Date.now(), spans: 0 };

  constructor(
    private readonly options: ResolvedRunOptions,
    private readonly context: ProcessorContext,
  ) {
    this.logger = context.logger;
    this.receiver = new OtlpHttpReceiver({
      host: options.host,
      port: options.port,
      maxBodyBytes: options.maxBodyBytes,
      metrics: this.metrics,
      logger: this.logger,
      handle: (signal, body, contentType) => this.takeHttp(signal, body, contentType),
      health: () => this.health(),
      // Input is taken as soon as the pipeline exists: during warm-up too, while /healthz still says 503.
      accepting: () => this.pipeline !== undefined && (this.phase === 'warming-up' || this.phase === 'running'),
    });
    this.cutter = new WaitInputCutter({ proxyServices: options.proxyServices });
    if (options.kafkaBrokers.length > 0) {
      this.kafka = kafkaClient({ brokers: options.kafkaBrokers, clientId: `waitgraph-${options.instanceId}`, logger: this.logger });
    }
    this.done = new Promise<void>((ok, fail) => {
      this.settle = (err) => (err === undefined ? ok() : fail(err));
    });
    this.done.catch(() => {});
  }

  /** Where it listens. */
  address(): ProcessorAddress {
    const a = this.receiver.address();
    return { url: a.url, port: a.port };
  }

  /** The life phase. */
  get status(): ProcessorPhase {
    return this.phase;
  }

  /** The pipeline's counts (spans, events, alerts), once started. */
  get counts() {
    return this.pipeline?.counts;
  }

  /** Resolves when warm-up is over (at once when there was nothing to rebuild). */
  async warmedUp(): Promise<void> {
    await this.pipeline?.warmedUp();
  }

  /**
   * Starts everything; resolves once input is taken (warm-up may still be going on: see `warmedUp()`).
   * While Kafka cannot be reached it keeps trying, until `shutdown()`.
   */
  async start(): Promise<ProcessorAddress> {
    if (this.phase !== 'new') throw new WaitgraphError('bad-usage', 'WaitgraphProcessor: start() called twice');
    this.phase = 'starting';
    const o = this.options;
    try {
      const address = await this.receiver.start();
      const startedAtMs = Date.now();
      const ledger = await this.readLedger();
      this.sinks = this.makeSinks();
      for (const s of this.sinks) await s.start();
      if (this.abort.signal.aborted) return this.address();
      this.pipeline = new DetectionPipeline({
        detector: { jaegerUrl: o.jaegerUrl, proxyServices: o.proxyServices, maxVictims: o.maxVictims },
        staleAfterMs: o.staleAfterMs,
        historyMs: o.historyMs,
        maxSpans: o.maxSpans,
        sinks: this.sinks,
        ledger,
        metrics: this.metrics,
        logger: this.logger,
        source: { instance: o.instanceId, version: WAITGRAPH_VERSION },
        kafka: this.kafka !== undefined,
        startedAtMs,
      });
      this.phase = 'warming-up';
      void this.pipeline.warmedUp().then(() => {
        if (this.phase === 'warming-up') this.phase = 'running';
      });
      if (this.kafka) await this.startSource(startedAtMs);
      this.startTimers();
      this.banner(address.url, ledger);
      await this.pipeline.tick();
      return this.address();
    } catch (err) {
      await this.shutdown('start failed');
      throw err;
    }
  }

  /**
   * Resolves when the processor has been shut down; rejects with the error that stopped it if a failure
   * it cannot retry did (the caller then exits non-zero).
   */
  stopped(): Promise<void> {
    return this.done;
  }

  /**
   * Stops taking input, lets the batch in progress finish, sends pending alerts and disconnects, within
   * `shutdownTimeout`. Resolves true if all of that finished in time. Idempotent.
   */
  shutdown(reason: string, error?: unknown): Promise<boolean> {
    this.shutdownPromise ??= this.close(reason, error);
    return this.shutdownPromise;
  }

  private async close(reason: string, error: unknown): Promise<boolean> {
    const was = this.phase;
    this.phase = 'stopping';
    this.abort.abort();
    for (const t of this.timers.splice(0)) clearInterval(t);
    if (was !== 'new' && was !== 'starting') this.logger.info('shutting down', { reason });
    const grace = this.options.shutdownTimeoutMs;
    const work = (async () => {
      await this.receiver.shutdown(grace);
      await this.source?.shutdown(grace);
      await this.pipeline?.flush().catch((err: unknown) => this.logger.error('pending alerts not sent', { error: String(err) }));
      await Promise.allSettled(this.sinks.map((s) => s.shutdown(grace)));
    })();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'timeout'>((ok) => (timer = setTimeout(() => ok('timeout'), grace)));
    const result = await Promise.race([work.then(() => 'done' as const), deadline]);
    clearTimeout(timer);
    this.phase = 'stopped';
    if (result === 'timeout') this.logger.warn('shutdown did not finish within the deadline', { deadlineMs: grace });
    else if (was !== 'new') this.logger.info('stopped', { alerts: this.pipeline?.counts.alerts });
    this.settle(error);
    return result === 'done';
  }

  private async readLedger(): Promise<AlertLedger> {
    const ledger = new AlertLedger();
    let alerts: Alert[];
    if (this.kafka) {
      const kafka = this.kafka;
      const topic = this.options.alertTopic;
      alerts = await retrying(
        `read back the alert topic ${topic}`,
        async () => {
          await ensureAlertTopic(kafka, topic, this.logger);
          return readAlertTopic(kafka, topic, { logger: this.logger });
        },
        { signal: this.abort.signal, logger: this.logger },
      );
    } else {
      alerts = this.options.alertFile ? await readAlertFile(this.options.alertFile, this.logger) : [];
    }
    for (const a of alerts) ledger.record(a);
    if (alerts.length > 0) {
      this.logger.info('read back the alerts announced before', {
        from: this.kafka ? `kafka:${this.options.alertTopic}` : `file:${this.options.alertFile}`,
        alerts: alerts.length,
        openDeadlocks: ledger.open().length,
      });
    }
    return ledger;
  }

  private makeSinks(): AlertSink[] {
    const o = this.options;
    const sinks: AlertSink[] = [];
    // The first sink is the record of what was announced: the topic with Kafka, else the file.
    if (this.kafka) sinks.push(new KafkaTopicAlertSink({ kafka: this.kafka, topic: o.alertTopic, logger: this.logger }));
    if (o.alertFile) sinks.push(new FileAlertSink(o.alertFile));
    if (o.stdout !== 'none') {
      sinks.push(new StdoutAlertSink(o.stdout, this.context.stdout ?? ((s) => void process.stdout.write(s)), this.context.color ? ansi : plain));
    }
    return [...sinks, ...(this.context.extraSinks ?? [])];
  }

  private async startSource(startedAtMs: number): Promise<void> {
    const o = this.options;
    const pipeline = this.pipeline!;
    const encoding = o.kafkaEncoding;
    this.source = new KafkaThreadInput({
      brokers: o.kafkaBrokers,
      clientId: `waitgraph-${o.instanceId}`,
      topics: [
        { topic: o.spansTopic, signal: 'traces', encoding },
        { topic: o.logsTopic, signal: 'logs', encoding },
      ],
      groupId: o.groupId,
      sessionTimeoutMs: o.kafkaSessionTimeoutMs,
      deadLetterTopic: o.deadLetterTopic,
      metrics: this.metrics,
      logger: this.logger,
      // With no replay window, a new group starts at the end: old spans are not news.
      fromBeginning: false,
      startAtTimestampMs: o.replayWindowMs > 0 ? startedAtMs - o.replayWindowMs : undefined,
      proxyServices: o.proxyServices,
      pipeline,
      onAssign: (partitions) => {
        if (partitions.length > 0) {
          this.logger.info('partitions assigned', {
            partitions: partitions.map((p) => `${p.topic}/${p.partition}@${p.startOffset ?? 'new'}..${p.endOffsetAtStart}`),
          });
        }
      },
    });
    await this.source.start();
    this.source.stopped().catch((err: unknown) => void this.shutdown('the Kafka source failed', err));
  }

  private takeHttp(signal: 'traces' | 'logs', body: Uint8Array, contentType: 'json' | 'proto'): Promise<void> {
    const receivedAtMs = Date.now();
    const input = this.cutter.cut({ signal, encoding: contentType, bytes: body, name: `POST /v1/${signal}` });
    return this.pipeline!.apply(HTTP_LANE, [{ batch: input.batch, observedAtMs: receivedAtMs, held: input }], receivedAtMs);
  }

  private startTimers(): void {
    const o = this.options;
    const tick = setInterval(() => {
      this.pipeline!.tick().catch((err: unknown) => void this.shutdown('detection failed', err));
    }, o.detectIntervalMs);
    tick.unref();
    this.timers.push(tick);
    if (o.statsIntervalMs > 0) {
      const stats = setInterval(() => void this.logStats(), o.statsIntervalMs);
      stats.unref();
      this.timers.push(stats);
    }
  }

  private health() {
    const details: Record<string, unknown> = { phase: this.phase };
    if (this.source) details.kafka = this.source.status satisfies SourceStatus;
    if (this.pipeline && this.phase === 'warming-up') details.replaying = this.pipeline.behind();
    const kafkaOk = !this.source || this.source.status === 'running';
    return { ready: this.phase === 'running' && kafkaOk, details };
  }

  private banner(url: string, ledger: AlertLedger): void {
    const o = this.options;
    this.logger.info(`waitgraph ${WAITGRAPH_VERSION} listening on ${url}`, {
      otlpHttp: [`${url}/v1/traces`, `${url}/v1/logs`],
      metrics: `${url}/metrics`,
      health: `${url}/healthz`,
      kafka: this.kafka ? { brokers: o.kafkaBrokers, topics: [o.spansTopic, o.logsTopic], group: o.groupId, replayWindowMs: o.replayWindowMs } : 'off',
      alerts: this.sinks.map((s) => s.name),
      staleAfterMs: o.staleAfterMs,
      openDeadlocks: ledger.open().length,
      instance: o.instanceId,
    });
  }

  private async logStats(): Promise<void> {
    const p = this.pipeline;
    if (!p) return;
    const now = Date.now();
    const s = p.stats();
    const c = p.counts;
    const rate = ((c.spans - this.lastStats.spans) * 1000) / Math.max(1, now - this.lastStats.at);
    this.lastStats = { at: now, spans: c.spans };
    const bad = (await this.metrics.badInput.get()).values.reduce((n, v) => n + v.value, 0);
    this.logger.info('stats', {
      phase: this.phase,
      spans: c.spans,
      spansPerSecond: Math.round(rate),
      waitEvents: c.waitEvents,
      badInput: bad,
      graphSpans: s.spans,
      tasks: s.tasks,
      openWaits: s.openWaits,
      openHolds: s.openHolds,
      activeDeadlocks: s.activeDeadlocks,
      alerts: c.alerts,
    });
  }
}
