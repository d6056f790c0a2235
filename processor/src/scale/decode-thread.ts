/**
 * The decode stage on a thread of its own (decode-thread-worker.ts), for `waitgraph run --role both`: there
 * the decode stage and the detection stage share one process, and on one event loop a span that closes a
 * cycle waited behind the decoding of every message fetched before it, and behind its garbage. The stage
 * needs nothing of the event loop's: it reads the spans topic and writes the wait-record topic itself. Its
 * log lines, its metrics (spans in, bad input, consumer lag), its life stage and its counts come to the
 * event loop's. The surface is `DecodeStage`'s.
 */
import { Worker } from 'node:worker_threads';
import { WaitgraphError } from '../errors.js';
import type { Logger } from '../io/log.js';
import type { SourceStatus } from '../io/index.js';
import { logWire, takeWireMetric, ThreadLife, THREAD_ENTRY, THREAD_YOUNG_GENERATION_MB, type LifeMessage, type WireLog, type WireMetric } from '../run/threads.js';
import type { DecodeStageMetrics, DecodeStageOptions } from './decode-stage.js';
import type { WaitRecordCounts } from './wait-records.js';

/** `DecodeStageOptions` that can cross to a thread. */
export type ThreadDecodeStageOptions = Omit<DecodeStageOptions, 'kafka' | 'logger' | 'metrics' | 'onStatus'>;

/** Options of `DecodeStageThread`. */
export interface DecodeStageThreadOptions extends ThreadDecodeStageOptions {
  /** Where the stage's log lines go. Required. */
  logger: Logger;
  /** Metrics the stage updates. Default none. */
  metrics?: DecodeStageMetrics;
}

/** Messages to the thread. */
export type ToDecodeThread = { t: 'start'; options: ThreadDecodeStageOptions } | { t: 'shutdown' };

/** Messages from the thread. */
export type FromDecodeThread =
  | LifeMessage
  | { t: 'counts'; counts: WaitRecordCounts & { messagesOut: number } }
  | WireLog
  | WireMetric
  | { t: 'shut-down' };

const WORKER_MODULE = new URL('./decode-thread-worker.ts', import.meta.url).href;

/** How long `shutdown` waits for the thread beyond the stage's own shutdown, before it ends the thread. */
const SHUTDOWN_LIMIT_MS = 15_000;

/** A decode stage running on a worker thread of its own; the thread ends when the stage has shut down. */
export class DecodeStageThread {
  /** The thread (its death, tested, stops the stage as failed). */
  readonly worker: Worker;
  private readonly life = new ThreadLife('DecodeStageThread');
  private latest: WaitRecordCounts & { messagesOut: number } = { spansIn: 0, spansKept: 0, eventsIn: 0, eventsKept: 0, logEventsIn: 0, messagesOut: 0 };
  private shutDown: (() => void) | undefined;
  private shutdownPromise: Promise<void> | undefined;
  private exited = false;

  constructor(private readonly options: DecodeStageThreadOptions) {
    this.worker = new Worker(THREAD_ENTRY, { workerData: { module: WORKER_MODULE }, resourceLimits: { maxYoungGenerationSizeMb: THREAD_YOUNG_GENERATION_MB } });
    this.worker.on('message', (m: FromDecodeThread) => this.onMessage(m));
    this.worker.on('error', (err) => this.life.end(new WaitgraphError('internal', `DecodeStageThread: the thread failed: ${err.message}`, { cause: err })));
    this.worker.on('exit', (code) => {
      this.exited = true;
      this.shutDown?.();
      this.life.end(new WaitgraphError('internal', `DecodeStageThread: the thread exited with ${code}`));
    });
  }

  /** As `DecodeStage.start`: creates the wait-record topic if missing, connects, and starts consuming. */
  start(): Promise<void> {
    const { logger, metrics, ...stage } = this.options;
    return this.life.begin(() => this.worker.postMessage({ t: 'start', options: stage } satisfies ToDecodeThread));
  }

  /** As `DecodeStage.status`. */
  get status(): SourceStatus {
    return this.life.state;
  }

  /** As `DecodeStage.counts`, as the thread last sent them (every 100 ms while they change, and at the end). */
  get counts(): Readonly<WaitRecordCounts> & { messagesOut: number } {
    return this.latest;
  }

  /** As `DecodeStage.stopped`: resolves when the stage stopped; rejects with the failure that stopped it. */
  stopped(): Promise<void> {
    return this.life.done;
  }

  /** As `DecodeStage.shutdown`, then the thread ends. Idempotent. */
  shutdown(): Promise<void> {
    this.shutdownPromise ??= (async () => {
      if (!this.exited) {
        const shutDown = new Promise<void>((ok) => (this.shutDown = ok));
        this.worker.postMessage({ t: 'shutdown' } satisfies ToDecodeThread);
        const timer = setTimeout(() => this.shutDown?.(), SHUTDOWN_LIMIT_MS);
        await shutDown;
        clearTimeout(timer);
      }
      this.life.end(undefined);
      await this.worker.terminate();
    })();
    return this.shutdownPromise;
  }

  private onMessage(m: FromDecodeThread): void {
    switch (m.t) {
      case 'log':
        logWire(this.options.logger, m);
        break;
      case 'metric':
        takeWireMetric(this.options.metrics, m, 'decode');
        break;
      case 'counts':
        this.latest = m.counts;
        break;
      case 'shut-down':
        this.shutDown?.();
        break;
      default:
        this.life.hear(m);
    }
  }
}
