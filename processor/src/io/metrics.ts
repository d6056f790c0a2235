/**
 * The processor's Prometheus metrics, in a registry of their own (never prom-client's global one), so that
 * several processors or tests in one process do not share counts. The OTLP/HTTP receiver serves the
 * registry at `/metrics`; the sources and the wiring update the metrics.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Why an input was rejected: the `reason` label of `waitgraph_bad_input_total`. */
export const BAD_INPUT_REASONS = [
  /** The payload is not valid OTLP (protobuf or JSON). */
  'decode',
  /** The body is over the size limit. */
  'too_large',
  /** A Content-Type the receiver does not take. */
  'unsupported_media_type',
  /** A Content-Encoding the receiver does not take, or a body that does not inflate. */
  'bad_encoding',
] as const;
/** A reason for rejecting input. */
export type BadInputReason = (typeof BAD_INPUT_REASONS)[number];

/** Bucket bounds of the detection-latency histogram, in seconds: 1 ms to 10 s. */
export const DETECTION_LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5, 10];

/** Options of `ProcessorMetrics`. */
export interface ProcessorMetricsOptions {
  /** Also export prom-client's default process metrics (CPU, memory, event-loop lag). Default true. */
  processMetrics?: boolean;
  /** Labels added to every metric, e.g. `{ instance: 'a' }`. Default none. */
  defaultLabels?: Record<string, string>;
}

/** The processor's metrics and the registry that holds them. */
export class ProcessorMetrics {
  /** The registry to serve; holds only these metrics (and the process metrics, if enabled). */
  readonly registry = new Registry();
  /** Spans taken in (after decoding), from every source. */
  readonly spansReceived: Counter;
  /** Wait events taken in: span events and log records of the wait-event vocabulary. */
  readonly waitEventsReceived: Counter;
  /** Inputs rejected, by reason. One Kafka message or one HTTP request counts once. */
  readonly badInput: Counter<'reason'>;
  /** Tasks in the live wait-for graph. */
  readonly graphTasks: Gauge;
  /** Spans in the live graph (the newest version of each). */
  readonly graphSpans: Gauge;
  /** Spans forgotten for being older than the history (`--history`). */
  readonly spansForgotten: Counter;
  /** The history the graph keeps now: `--history`, or less when `--max-spans` cut it short. */
  readonly historySeconds: Gauge;
  /** Edges (waits) in the live wait-for graph. */
  readonly graphEdges: Gauge;
  /** Finding changes, by kind (`deadlock`, `potential-deadlock`) and state (`active`, `resolved`). */
  readonly findings: Counter<'kind' | 'state'>;
  /** Messages not yet consumed, per topic partition: the high watermark minus the next offset to read. */
  readonly consumerLag: Gauge<'topic' | 'partition'>;
  /** Seconds from taking in the input that completed a finding to reporting it. */
  readonly detectionLatency: Histogram;
  /** Garbage collections of waitgraph's worker threads, seconds each, by thread (`kafka`, `decode`) and kind. */
  readonly threadGc: Histogram<'thread' | 'kind'>;

  constructor(options: ProcessorMetricsOptions = {}) {
    const registers = [this.registry];
    if (options.defaultLabels) this.registry.setDefaultLabels(options.defaultLabels);
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    this.spansReceived = new Counter({
      name: 'waitgraph_spans_received_total',
      help: 'Spans taken in, after decoding, from every source.',
      registers,
    });
    this.waitEventsReceived = new Counter({
      name: 'waitgraph_wait_events_received_total',
      help: 'Wait events taken in, as span events or log records.',
      registers,
    });
    this.badInput = new Counter({
      name: 'waitgraph_bad_input_total',
      help: 'Inputs rejected (Kafka messages or HTTP requests), by reason.',
      labelNames: ['reason'],
      registers,
    });
    this.graphTasks = new Gauge({ name: 'waitgraph_graph_tasks', help: 'Tasks in the live wait-for graph.', registers });
    this.graphSpans = new Gauge({ name: 'waitgraph_graph_spans', help: 'Spans in the live wait-for graph.', registers });
    this.spansForgotten = new Counter({
      name: 'waitgraph_spans_forgotten_total',
      help: 'Spans forgotten for having ended (or gone stale) longer ago than the history.',
      registers,
    });
    this.historySeconds = new Gauge({
      name: 'waitgraph_history_seconds',
      help: 'How far back the live graph keeps ended spans: --history, or less when --max-spans cut it short.',
      registers,
    });
    this.graphEdges = new Gauge({ name: 'waitgraph_graph_edges', help: 'Wait edges in the live wait-for graph.', registers });
    this.findings = new Counter({
      name: 'waitgraph_findings_total',
      help: 'Finding changes reported, by kind and state.',
      labelNames: ['kind', 'state'],
      registers,
    });
    this.consumerLag = new Gauge({
      name: 'waitgraph_consumer_lag',
      help: 'Messages not yet consumed, per topic partition.',
      labelNames: ['topic', 'partition'],
      registers,
    });
    this.detectionLatency = new Histogram({
      name: 'waitgraph_detection_latency_seconds',
      help: 'Seconds from taking in the input that completed a finding to reporting the finding.',
      buckets: DETECTION_LATENCY_BUCKETS,
      registers,
    });
    this.threadGc = new Histogram({
      name: 'waitgraph_thread_gc_duration_seconds',
      help: "Garbage collections of waitgraph's worker threads (the Kafka thread, the decode stage's thread), by thread and kind, as nodejs_gc_duration_seconds has the event loop's.",
      labelNames: ['thread', 'kind'],
      buckets: [0.001, 0.01, 0.1, 1, 2, 5],
      registers,
    });
    // Every reason shows from the start, at 0, so a rate() over it never starts from a missing series.
    for (const reason of BAD_INPUT_REASONS) this.badInput.inc({ reason }, 0);
  }

  /** After a `Detector.forget` at `nowNs` (unix ns): how many spans went, and where the history now begins (0: nothing kept yet). */
  forgot(count: number, historyStartNs: number, nowNs: number): void {
    this.spansForgotten.inc(count);
    if (historyStartNs > 0) this.historySeconds.set(Math.max(0, (nowNs - historyStartNs) / 1e9));
  }

  /** The graph gauges, from `Detector.stats()`. */
  graph(stats: { tasks: number; spans: number; openWaits: number }): void {
    this.graphTasks.set(stats.tasks);
    this.graphSpans.set(stats.spans);
    this.graphEdges.set(stats.openWaits);
  }

  /** The Prometheus text exposition of every metric. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** The Content-Type of `text()`. */
  get contentType(): string {
    return this.registry.contentType;
  }
}
