/**
 * The Kafka input of `waitgraph run` on a thread of its own: the same source, decode and cut as `kafkaInput`
 * (kafka-input.ts), but the kafkajs consumer and the cut run in a worker thread (kafka-thread-worker.ts), and
 * the event loop only reads each batch's cut frame back into records (cut-frame.ts) and runs detection.
 *
 * Why: on the benchmark's workload, reading the messages (kafkajs) and cutting them cost the event loop
 * about as much as detection did. Split, the two run side by side on two cores, and a span that closes a
 * cycle no longer waits behind the decoding of the messages before it (`npm run bench:kafka`).
 *
 * Delivery is `kafkaInput`'s: a batch's offsets are committed only once the event loop has taken it into the
 * pipeline and its alerts are out (the source's `beforeCommit` asks the event loop to settle). The thread
 * reads on meanwhile, a few batches ahead. The source's dead-letter topic, its metrics
 * (`bad_input_total`, consumer lag) and its log lines come through to the processor's.
 *
 * The thread keeps its own memory of open spans and wanted ancestors (`WaitRecordBuilder`): spans that come
 * by OTLP/HTTP are cut apart from those that come by Kafka. A chain whose spans came by both is cut as if
 * it were two.
 */
import { Worker } from 'node:worker_threads';
import { WaitgraphError } from '../errors.js';
import type { AssignedPartition, BackoffOptions, BatchInfo, SourceStatus, SourceTopic } from '../io/index.js';
import type { Logger } from '../io/log.js';
import type { ProcessorMetrics } from '../io/metrics.js';
import { readCutFrame, type CutFrame } from './cut-frame.js';
import { takeBatch } from './kafka-input.js';
import type { DetectionPipeline } from './pipeline.js';
import { errorToWire, logWire, takeWireMetric, ThreadLife, THREAD_ENTRY, THREAD_YOUNG_GENERATION_MB, type LifeMessage, type WireError, type WireLog, type WireMetric } from './threads.js';

/** What the thread's source is built from: `KafkaSourceOptions` that can cross to a thread, and the cut's. */
export interface ThreadSourceOptions {
  brokers: string[];
  clientId?: string;
  topics: SourceTopic[];
  groupId?: string;
  sessionTimeoutMs?: number;
  maxWaitTimeMs?: number;
  deadLetterTopic?: string | null;
  fromBeginning?: boolean;
  startAtTimestampMs?: number;
  backoff?: BackoffOptions;
  /** As `WaitFilterOptions.proxyServices`. */
  proxyServices?: string[];
}

/** Options of `KafkaThreadInput`. */
export interface KafkaThreadInputOptions extends ThreadSourceOptions {
  /** Takes the batches, and the partitions assigned (before `onAssign` is called). Required. */
  pipeline: DetectionPipeline;
  /** Metrics the source updates. Default none. */
  metrics?: ProcessorMetrics;
  /** Where the source's log lines go. */
  logger: Logger;
  /** As `KafkaSourceOptions.onAssign`. */
  onAssign?: (partitions: AssignedPartition[]) => void;
  /** The thread to run on, its source stopped; default a thread of its own, ended at shutdown. */
  thread?: KafkaThread;
}

/** Messages to the thread. */
export type ToThread = { t: 'start'; options: ThreadSourceOptions } | { t: 'answer'; id: number; error?: WireError } | { t: 'shutdown'; graceMs: number };

/** Messages from the thread. */
export type FromThread =
  | LifeMessage
  | { t: 'assign'; partitions: AssignedPartition[] }
  | { t: 'batch'; id: number; info: BatchInfo; observedAtMs: number[]; frame: CutFrame }
  | { t: 'settle'; id: number }
  | WireLog
  | WireMetric;

const WORKER_MODULE = new URL('./kafka-thread-worker.ts', import.meta.url).href;

/**
 * A worker thread for Kafka sources, one at a time (`KafkaThreadInput`). A processor has one for its life;
 * the benchmark runs one source after another on one, as a processor that has been running would run them.
 */
export class KafkaThread {
  readonly worker: Worker;
  /** The input whose source the thread runs, if any. */
  user: KafkaThreadInput | undefined;
  private exited = false;

  constructor() {
    this.worker = new Worker(THREAD_ENTRY, { workerData: { module: WORKER_MODULE }, resourceLimits: { maxYoungGenerationSizeMb: THREAD_YOUNG_GENERATION_MB } });
    this.worker.once('exit', () => (this.exited = true));
  }

  /** Whether the thread has ended. */
  get ended(): boolean {
    return this.exited;
  }

  /** Ends the thread (its source, if any, left as it is). */
  async close(): Promise<void> {
    if (!this.exited) await this.worker.terminate();
  }
}

/** A Kafka source on a thread of its own, feeding the pipeline; the surface of `KafkaSource` the processor uses. */
export class KafkaThreadInput {
  private thread: KafkaThread | undefined;
  private readonly life = new ThreadLife('KafkaThreadInput');
  private readonly listeners: { message: (m: FromThread) => void; error: (err: Error) => void; exit: (code: number) => void };

  constructor(private readonly options: KafkaThreadInputOptions) {
    this.listeners = {
      message: (m) => this.onMessage(m),
      error: (err) => this.life.end(new WaitgraphError('internal', `KafkaThreadInput: the thread failed: ${err.message}`, { cause: err })),
      exit: (code) => this.life.end(new WaitgraphError('internal', `KafkaThreadInput: the thread exited with ${code}`)),
    };
  }

  /** As `KafkaSource.start`: resolves once the consumer runs. */
  start(): Promise<void> {
    if (this.life.state !== 'new') throw new WaitgraphError('bad-usage', `KafkaThreadInput: start() called when ${this.life.state}`);
    const { pipeline, metrics, logger, onAssign, thread, ...source } = this.options;
    const t = thread ?? new KafkaThread();
    if (t.ended) throw new WaitgraphError('bad-usage', 'KafkaThreadInput: the thread has ended');
    if (t.user !== undefined) throw new WaitgraphError('bad-usage', 'KafkaThreadInput: the thread runs a source already');
    t.user = this;
    this.thread = t;
    t.worker.on('message', this.listeners.message);
    t.worker.on('error', this.listeners.error);
    t.worker.on('exit', this.listeners.exit);
    return this.life.begin(() => this.post({ t: 'start', options: source }));
  }

  /** As `KafkaSource.status`. */
  get status(): SourceStatus {
    return this.life.state;
  }

  /** As `KafkaSource.stopped`. */
  stopped(): Promise<void> {
    return this.life.done;
  }

  /**
   * As `KafkaSource.shutdown`: the thread stops its source (within `graceMs`); a thread of its own then
   * ends. Idempotent.
   */
  async shutdown(graceMs = 10_000): Promise<void> {
    const t = this.thread;
    if (t === undefined || this.life.over) {
      this.life.end(undefined);
      if (t !== undefined) this.release(t);
      return;
    }
    if (this.life.state !== 'stopping') this.post({ t: 'shutdown', graceMs });
    this.life.state = 'stopping';
    // A thread that does not stop its source in time is ended (a shared one too: it is stuck).
    const timer = setTimeout(() => void t.close(), graceMs + 2_000);
    await this.life.done.catch(() => {});
    clearTimeout(timer);
    this.release(t);
  }

  /** Lets go of the thread: ends it if it was this input's own. */
  private release(t: KafkaThread): void {
    if (t.user === this) t.user = undefined;
    t.worker.off('message', this.listeners.message);
    t.worker.off('error', this.listeners.error);
    t.worker.off('exit', this.listeners.exit);
    if (this.options.thread === undefined) void t.close();
  }

  private post(m: ToThread): void {
    this.thread?.worker.postMessage(m);
  }

  private answer(id: number, work: Promise<void>): void {
    work.then(
      () => this.post({ t: 'answer', id }),
      (err: unknown) => this.post({ t: 'answer', id, error: errorToWire(err) }),
    );
  }

  private onMessage(m: FromThread): void {
    const o = this.options;
    switch (m.t) {
      case 'batch':
        // Taken in now, in the order the batches came (a frame that does not read is a rejection, answered).
        this.answer(m.id, (async () => takeBatch(o.pipeline, readCutFrame(m.frame), m.observedAtMs, m.info))());
        break;
      case 'settle':
        this.answer(m.id, o.pipeline.settled());
        break;
      case 'assign':
        o.pipeline.assign(m.partitions);
        o.onAssign?.(m.partitions);
        break;
      case 'log':
        logWire(o.logger, m);
        break;
      case 'metric':
        takeWireMetric(o.metrics, m, 'kafka');
        break;
      default:
        this.life.hear(m);
    }
  }
}
