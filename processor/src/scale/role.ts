/**
 * `waitgraph run --role decode|detect|both`: the scaled-out processor as one object with the lifecycle of
 * `WaitgraphProcessor` (start, stopped, shutdown), so the command runs either. `both` is the usual
 * deployment: every instance decodes its share of the input and detects on the whole wait graph; `decode`
 * and `detect` split the stages into separate deployments. See docs/architecture.md.
 *
 * Groups: the decode stage is `<group-id>-decode`, the ownership group `<group-id>-detect`. Alerts follow
 * `schemas/alert.schema.json`, as from the single-instance processor. `/metrics` and `/healthz` are served
 * on `--host`/`--port`, as by the single-instance processor (without its OTLP/HTTP receiver). With `both`,
 * the decode stage runs on a thread of its own (decode-thread.ts).
 */
import { DEFAULT_WAITS_TOPIC } from '../../../schemas/index.js';
import { WaitgraphError } from '../errors.js';
import { OtlpHttpReceiver, ProcessorMetrics } from '../io/index.js';
import { toAlert } from '../run/alerts.js';
import type { RunLogger } from '../run/logger.js';
import type { ResolvedRunOptions } from '../run/options.js';
import { WAITGRAPH_VERSION } from '../run/version.js';
import { DecodeStage } from './decode-stage.js';
import { DecodeStageThread } from './decode-thread.js';
import { DetectStage } from './detect-stage.js';

/** Roles of `waitgraph run`: `all` is the single-instance processor; the others are scale-out stages. */
export const ROLES = ['all', 'decode', 'detect', 'both'] as const;
/** A role. */
export type Role = (typeof ROLES)[number];

/** The options the scaled-out processor reads: those of `waitgraph run`, and the wait-record topic. */
export type ScaleOptions = Pick<
  ResolvedRunOptions,
  | 'kafkaBrokers'
  | 'spansTopic'
  | 'logsTopic'
  | 'kafkaEncoding'
  | 'groupId'
  | 'alertTopic'
  | 'deadLetterTopic'
  | 'jaegerUrl'
  | 'proxyServices'
  | 'maxVictims'
  | 'detectIntervalMs'
  | 'staleAfterMs'
  | 'historyMs'
  | 'maxSpans'
  | 'shutdownTimeoutMs'
  | 'instanceId'
  | 'host'
  | 'port'
> & {
  /** The wait-record topic. Default `waitgraph.waits`. */
  waitsTopic?: string;
  /** Consumer session timeout of both stages, ms. Default 10000. */
  kafkaSessionTimeoutMs?: number;
};

/** The decode stage, the detection stage, or both, in one process. */
export class ScaleProcessor {
  /** Its metrics. */
  readonly metrics = new ProcessorMetrics();
  private readonly decode: DecodeStage | DecodeStageThread | undefined;
  private readonly detect: DetectStage | undefined;
  /** `/metrics` and `/healthz`. */
  private readonly http: OtlpHttpReceiver;
  private running = false;
  private readonly logger: RunLogger;
  private readonly shutdownTimeoutMs: number;
  private shutdownPromise: Promise<boolean> | undefined;
  private readonly done: Promise<void>;
  private settle!: (err?: unknown) => void;

  constructor(
    readonly role: Exclude<Role, 'all'>,
    options: ScaleOptions,
    logger: RunLogger,
  ) {
    if (options.kafkaBrokers.length === 0) throw new WaitgraphError('bad-config', `--role ${role} needs Kafka: give --kafka-brokers`);
    this.logger = logger;
    this.shutdownTimeoutMs = options.shutdownTimeoutMs;
    const waitsTopic = options.waitsTopic ?? DEFAULT_WAITS_TOPIC;
    const common = { brokers: options.kafkaBrokers, clientId: `waitgraph-${options.instanceId}`, logger, metrics: this.metrics, waitsTopic };
    if (role !== 'detect') {
      // With both stages in the process, the decode stage runs on a thread of its own: on the event loop
      // of the detection stage, a span that closes a cycle would wait behind the decoding of every message
      // fetched before it (decode-thread.ts).
      const Stage = role === 'both' ? DecodeStageThread : DecodeStage;
      this.decode = new Stage({
        ...common,
        topics: [
          { topic: options.spansTopic, signal: 'traces', encoding: options.kafkaEncoding },
          { topic: options.logsTopic, signal: 'logs', encoding: options.kafkaEncoding },
        ],
        groupId: `${options.groupId}-decode`,
        deadLetterTopic: options.deadLetterTopic,
        sessionTimeoutMs: options.kafkaSessionTimeoutMs ?? 10_000,
        filter: { proxyServices: options.proxyServices },
      });
    }
    if (role !== 'decode') {
      const source = { instance: options.instanceId, version: WAITGRAPH_VERSION };
      this.detect = new DetectStage({
        ...common,
        instanceId: options.instanceId,
        alertTopic: options.alertTopic,
        ownershipGroup: `${options.groupId}-detect`,
        sessionTimeoutMs: options.kafkaSessionTimeoutMs ?? 10_000,
        detector: { jaegerUrl: options.jaegerUrl, proxyServices: options.proxyServices, maxVictims: options.maxVictims },
        staleAfterMs: options.staleAfterMs,
        historyMs: options.historyMs,
        maxSpans: options.maxSpans,
        expireEveryMs: options.detectIntervalMs,
        render: (c) => toAlert(c.change, c.finding, source, new Date()),
      });
    }
    this.http = new OtlpHttpReceiver({
      host: options.host,
      port: options.port,
      metrics: this.metrics,
      logger,
      health: () => ({ ready: this.running, details: { role, instance: options.instanceId } }),
    });
    this.done = new Promise<void>((ok, fail) => {
      this.settle = (err) => (err === undefined ? ok() : fail(err));
    });
    this.done.catch(() => {});
  }

  /** Starts the stages: detection first, so it follows the alert topic before any input is decoded. */
  async start(): Promise<void> {
    let url: string;
    try {
      // Listening first: /healthz answers 503 while the stages start.
      url = (await this.http.start()).url;
      await this.detect?.start();
      await this.decode?.start();
    } catch (err) {
      await this.shutdown('start failed');
      throw err;
    }
    this.running = true;
    this.decode?.stopped().catch((err: unknown) => void this.shutdown('the decode stage failed', err));
    this.logger.info(`waitgraph ${WAITGRAPH_VERSION} running as --role ${this.role}`, {
      instance: this.detect?.instanceId,
      metrics: `${url}/metrics`,
      health: `${url}/healthz`,
    });
  }

  /** Resolves when shut down; rejects with the failure that stopped it. */
  stopped(): Promise<void> {
    return this.done;
  }

  /** Stops the stages within the shutdown deadline. Resolves true if they stopped in time. Idempotent. */
  shutdown(reason: string, error?: unknown): Promise<boolean> {
    this.shutdownPromise ??= (async () => {
      this.logger.info('shutting down', { reason });
      this.running = false;
      const work = Promise.allSettled([this.decode?.shutdown(), this.detect?.shutdown(), this.http.shutdown()]);
      const timedOut = new Promise<'timeout'>((ok) => setTimeout(() => ok('timeout'), this.shutdownTimeoutMs).unref());
      const result = await Promise.race([work, timedOut]);
      this.settle(error);
      return result !== 'timeout';
    })();
    return this.shutdownPromise;
  }
}
