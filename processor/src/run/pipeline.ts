/**
 * The detection pipeline: decoded input in, alerts out. It owns the engine, and runs one step at a time
 * (applying a batch, a timer tick, the end of warm-up), so the engine, which is not reentrant, never sees
 * two callers.
 *
 * Life: it starts warming up (when there is state to rebuild) and then runs.
 * - Warm-up: input is held and applied in timestamp order (see replay.ts), detection runs, and nothing is
 *   announced; the changes are only noted. Warm-up ends when the Kafka replay has caught up and, if
 *   deadlocks were announced open before the restart, a staleness time has passed since the start (so
 *   every live emitter has sent a fresh snapshot). Then the pipeline compares what it found with what was
 *   announced (the alert ledger): still found and open, silence; found and not announced, `opened`;
 *   announced open and gone, `resolved`.
 * - Running: after the input of each turn of the event loop (every batch of one Kafka fetch, or one
 *   OTLP/HTTP request), and on each timer tick (stale spans expired first), detection runs and each change
 *   the ledger has not seen goes out to the sinks, in order. One pass for a fetch's batches, not one per
 *   batch: a pass costs more than the spans it takes in (it looks again at what they touch), and the
 *   batches of one fetch arrive together anyway.
 *
 * Alerts that a sink failed to take stay in an outbox and are sent again on the next step.
 */
import type { Alert, AlertChangeKind, Finding } from '../../../schemas/index.js';
import { EVENT_NAMES } from '../../../schemas/index.js';
import { Detector, type DetectorOptions, type FindingChange } from '../engine/index.js';
import type { AssignedPartition, ProcessorMetrics } from '../io/index.js';
import type { DecodedBatch } from '../model/span.js';
import { goneFinding, toAlert, type AlertSource } from './alerts.js';
import type { AlertLedger } from './ledger.js';
import type { RunLogger } from './logger.js';
import { ReplayOrder, type TimedBatch } from './replay.js';
import type { AlertSink } from './sinks.js';

/**
 * Most spans the graph holds by default (`--max-spans`). V8's major collections mark the live graph on the
 * event loop, and alerts wait meanwhile: most of a second at a million spans, a third of one at 500,000
 * (docs/processor.md, Throughput and latency).
 */
export const DEFAULT_MAX_SPANS = 500_000;

/** Options of the pipeline. */
export interface PipelineOptions {
  detector: DetectorOptions;
  /** The staleness time, ms. */
  staleAfterMs: number;
  /** How much history the graph keeps, ms (see `Detector.forget`). Default 600000. */
  historyMs?: number;
  /** Most spans the graph holds (see `Detector.forget`). Default `DEFAULT_MAX_SPANS`. */
  maxSpans?: number;
  /** Sinks, the record of what was announced first (Kafka topic, or the alert file without Kafka). */
  sinks: AlertSink[];
  /** What was announced before this start. */
  ledger: AlertLedger;
  metrics: ProcessorMetrics;
  logger: RunLogger;
  source: AlertSource;
  /** Whether a Kafka replay must catch up before warm-up can end. */
  kafka: boolean;
  /** The start time, ms. */
  startedAtMs: number;
  /** A replayed partition without progress for this long counts as caught up. Default 30000. */
  stallMs?: number;
  /** The clock, unix ms. Default `Date.now`. */
  now?: () => number;
}

/** Counts since the start, for the stats line and the demo. */
export interface PipelineCounts {
  batches: number;
  spans: number;
  waitEvents: number;
  alerts: Record<AlertChangeKind, number>;
  /** Changes the ledger had already seen (duplicates that were not sent). */
  suppressed: number;
}

interface Outgoing {
  alert: Alert;
  /** When the input that completed the finding was received, ms; for the latency histogram. */
  receivedAtMs?: number;
}

const WAIT_EVENTS = new Set<string>(EVENT_NAMES);

/** The detection pipeline. See the module comment. */
export class DetectionPipeline {
  private readonly detector: Detector;
  private readonly replay: ReplayOrder;
  private readonly now: () => number;
  private tail: Promise<unknown> = Promise.resolve();
  private warming = true;
  private readonly warmUntilMs: number;
  /** Changes seen during warm-up: the latest resolved finding per fingerprint, and potentials. */
  private readonly warmResolved = new Map<string, Finding>();
  private readonly warmPotentials = new Map<string, Finding>();
  private outbox: Outgoing[] = [];
  private lastGaugesAt = 0;
  /** Kafka lanes whose last batch was not the end of the partition, and the newest record time applied. */
  private readonly lagging = new Set<string>();
  private kafkaClockMs = -Infinity;
  private warmUpListeners: (() => void)[] = [];
  /** The detection pass due for input taken since the last one; its failure, which stops the pipeline. */
  private detection: Promise<void> | undefined;
  private pendingSinceMs: number | undefined;
  private failure: unknown;
  /** Counts since the start. */
  readonly counts: PipelineCounts = { batches: 0, spans: 0, waitEvents: 0, alerts: { opened: 0, resolved: 0, potential: 0 }, suppressed: 0 };

  constructor(private readonly options: PipelineOptions) {
    this.detector = new Detector(options.detector);
    this.now = options.now ?? Date.now;
    this.replay = new ReplayOrder(options.stallMs ?? 30_000, options.kafka);
    // Announced-open deadlocks are only declared gone once every live emitter has had time to resend.
    this.warmUntilMs = options.ledger.open().length > 0 ? options.startedAtMs + options.staleAfterMs : options.startedAtMs;
  }

  /** Whether warm-up is over. */
  get ready(): boolean {
    return !this.warming;
  }

  /** Resolves when warm-up is over. */
  warmedUp(): Promise<void> {
    return this.warming ? new Promise((ok) => this.warmUpListeners.push(ok)) : Promise.resolve();
  }

  /** Partitions of the spans and logs topics still replaying. */
  behind(): string[] {
    return this.replay.behind();
  }

  /** Sizes of the live graph. */
  stats() {
    return this.detector.stats();
  }

  /** The findings now: active deadlocks, resolved ones, potential ones. */
  findings(): Finding[] {
    return this.detector.findings();
  }

  /** Partitions the Kafka group assigned (maybe none). */
  assign(partitions: readonly AssignedPartition[]): void {
    this.replay.assign(partitions, this.now());
  }

  /**
   * Applies decoded input from one lane (`topic/partition`, or `http`), then detects and publishes. During
   * warm-up the input is held and applied in order. Resolves when the resulting alerts are out.
   * @param lastOffset for Kafka input, the batch's last offset
   * @param behind for Kafka input, whether the partition has more records after this batch
   */
  async apply(lane: string, items: readonly TimedBatch[], receivedAtMs: number, lastOffset?: string, behind = false): Promise<void> {
    await this.take(lane, items, receivedAtMs, lastOffset, behind);
    await this.settled();
  }

  /**
   * Like `apply`, but resolves once the input is in the graph: detection runs once for all input taken in
   * the same turn of the event loop, and `settled()` says when its alerts are out.
   */
  take(lane: string, items: readonly TimedBatch[], receivedAtMs: number, lastOffset?: string, behind = false): Promise<void> {
    return this.serial(async () => {
      if (this.failure !== undefined) throw this.failure;
      this.count(items);
      if (lastOffset !== undefined) {
        if (behind) this.lagging.add(lane);
        else this.lagging.delete(lane);
        for (const it of items) if (it.observedAtMs > this.kafkaClockMs) this.kafkaClockMs = it.observedAtMs;
      }
      if (this.warming) {
        this.replay.push(lane, items, lastOffset, this.now());
        this.feed(this.replay.drain());
        this.note(this.detector.detect());
        await this.maybeFinishWarmUp();
        return;
      }
      this.feed(items);
      if (this.pendingSinceMs === undefined || receivedAtMs < this.pendingSinceMs) this.pendingSinceMs = receivedAtMs;
      if (!this.detection) {
        this.detection = this.detectSoon();
        this.detection.catch((err: unknown) => (this.failure ??= err));
      }
    });
  }

  /**
   * Resolves when every input taken so far has been through detection and its alerts are out (rejects if
   * detection failed).
   */
  settled(): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    // A pass still due covers all input taken; else the step in progress, maybe a pass, is the last one.
    return this.detection ?? this.serial(async () => {});
  }

  /** A detection pass once the event loop has taken in what this turn brings (a fetch's other batches). */
  private async detectSoon(): Promise<void> {
    await new Promise<void>((ok) => setImmediate(ok));
    return this.serial(async () => {
      this.detection = undefined;
      await this.detectAndPublish();
    });
  }

  /**
   * Detects and publishes what changed, timed from the earliest input taken in since the last pass: the
   * pass a batch asked for, or the timer's when it comes first (the batch's input is in the graph either way).
   */
  private async detectAndPublish(): Promise<void> {
    const since = this.pendingSinceMs;
    this.pendingSinceMs = undefined;
    await this.publish(this.detector.detect(), since);
  }

  /** The timer: expires stale spans and detects (or, warming up, checks whether warm-up can end). */
  tick(): Promise<void> {
    return this.serial(async () => {
      if (this.failure !== undefined) throw this.failure;
      if (this.warming) {
        for (const lane of this.replay.markStalled(this.now())) {
          this.options.logger.warn('replay: a partition made no progress; taken as caught up', { partition: lane });
        }
        await this.maybeFinishWarmUp();
        return;
      }
      const clock = this.stalenessClock();
      this.detector.expire(clock * 1e6, this.options.staleAfterMs * 1e6);
      const forgotten = this.detector.forget((clock - (this.options.historyMs ?? 600_000)) * 1e6, this.options.maxSpans ?? DEFAULT_MAX_SPANS);
      this.options.metrics.forgot(forgotten, this.detector.historyStart, clock * 1e6);
      await this.detectAndPublish();
      this.updateGauges(false);
    });
  }

  /**
   * The time staleness is judged at. Normally the wall clock; but while the Kafka consumer is behind, the
   * newest record time it has applied: a backlog is not silence, and the snapshots that keep a span fresh
   * are in it, still to be read.
   */
  private stalenessClock(): number {
    const now = this.now();
    return this.lagging.size > 0 ? Math.min(now, this.kafkaClockMs) : now;
  }

  /** Detects on what was taken in, and sends what is still in the outbox. */
  async flush(): Promise<void> {
    await this.settled();
    return this.serial(() => this.send([]));
  }

  private serial<T>(step: () => Promise<T>): Promise<T> {
    const run = this.tail.then(step);
    this.tail = run.catch(() => {});
    return run;
  }

  private count(items: readonly TimedBatch[]): void {
    let spans = 0;
    let events = 0;
    for (const { batch, held } of items) {
      if (held) {
        spans += held.spans;
        events += held.waitEvents;
        continue;
      }
      spans += batch.spans.length;
      events += batch.logEvents.length;
      for (const s of batch.spans) for (const e of s.events) if (WAIT_EVENTS.has(e.name)) events++;
    }
    this.counts.batches += items.length;
    this.counts.spans += spans;
    this.counts.waitEvents += events;
    this.options.metrics.spansReceived.inc(spans);
    this.options.metrics.waitEventsReceived.inc(events);
  }

  private feed(items: readonly TimedBatch[]): void {
    for (const { batch, observedAtMs } of items) this.addBatch(batch, observedAtMs);
  }

  private addBatch(batch: DecodedBatch, observedAtMs: number): void {
    this.detector.addBatch(batch, observedAtMs * 1e6);
  }

  /** Notes the changes of a warm-up detection pass: they are compared with the ledger at its end. */
  private note(changes: FindingChange[]): void {
    for (const { change, finding } of changes) {
      if (change === 'resolved') this.warmResolved.set(finding.fingerprint, finding);
      else if (change === 'potential') this.warmPotentials.set(finding.fingerprint, finding);
    }
  }

  private async maybeFinishWarmUp(): Promise<void> {
    if (!this.warming) return;
    if (this.options.kafka && !this.replay.caughtUp) return;
    if (this.now() < this.warmUntilMs) return;
    this.feed(this.replay.drain());
    this.note(this.detector.detect());
    this.detector.expire(this.now() * 1e6, this.options.staleAfterMs * 1e6);
    this.note(this.detector.detect());
    const out = this.reconcile();
    this.warming = false;
    const stats = this.detector.stats();
    const quiet = !this.options.kafka && this.options.ledger.open().length === 0;
    this.options.logger[quiet ? 'debug' : 'info']('warm-up done', {
      spans: this.counts.spans,
      seconds: Math.round((this.now() - this.options.startedAtMs) / 100) / 10,
      activeDeadlocks: stats.activeDeadlocks,
      announcedBefore: this.options.ledger.open().length,
      toAnnounce: out.length,
    });
    await this.send(out.map(([change, finding]) => ({ alert: toAlert(change, finding, this.options.source, new Date(this.now())) })));
    this.updateGauges(true);
    for (const ok of this.warmUpListeners.splice(0)) ok();
  }

  /** What to announce at the end of warm-up: the difference between what is found and what was announced. */
  private reconcile(): [AlertChangeKind, Finding][] {
    const { ledger } = this.options;
    const now = new Date(this.now());
    const active = new Map<string, Finding>();
    for (const f of this.detector.findings()) if (f.kind === 'deadlock' && f.state === 'active') active.set(f.fingerprint, f);
    const announced = new Map(ledger.open().map((f) => [f.fingerprint, f]));
    const out: [AlertChangeKind, Finding][] = [];
    for (const fp of new Set([...announced.keys(), ...this.warmResolved.keys(), ...active.keys()])) {
      const open = announced.get(fp);
      const now_ = active.get(fp);
      const resolved = this.warmResolved.get(fp);
      if (open) {
        // Still there: it was announced, say nothing.
        if (now_ && now_.formedAt === open.formedAt) continue;
        // Gone, or broken and formed again: close the announced incident first.
        out.push(['resolved', resolved && resolved.formedAt === open.formedAt ? resolved : goneFinding(open, now)]);
        if (now_) out.push(['opened', now_]);
        continue;
      }
      // Formed and broken while nobody was announcing: say so once.
      if (resolved && resolved.formedAt !== now_?.formedAt && ledger.isNew('resolved', resolved)) out.push(['resolved', resolved]);
      if (now_ && ledger.isNew('opened', now_)) out.push(['opened', now_]);
    }
    for (const p of this.warmPotentials.values()) if (ledger.isNew('potential', p)) out.push(['potential', p]);
    return out;
  }

  /** Alerts for the changes the ledger has not seen, then sends them. */
  private async publish(changes: FindingChange[], receivedAtMs: number | undefined): Promise<void> {
    const out: Outgoing[] = [];
    const at = this.now();
    for (const { change, finding } of changes) {
      if (!this.options.ledger.isNew(change, finding)) {
        this.counts.suppressed++;
        continue;
      }
      const latency = receivedAtMs === undefined ? undefined : Math.max(0, at - receivedAtMs);
      out.push({ alert: toAlert(change, finding, this.options.source, new Date(at), latency), receivedAtMs });
    }
    await this.send(out);
  }

  /** Sends the outbox and `more` to every sink, in order; what the first sink refuses stays in the outbox. */
  private async send(more: Outgoing[]): Promise<void> {
    this.outbox.push(...more);
    if (this.outbox.length === 0) return;
    const batch = this.outbox;
    const alerts = batch.map((o) => o.alert);
    const [record, ...others] = this.options.sinks;
    if (record) {
      try {
        await record.publish(alerts);
      } catch (err) {
        this.options.logger.error('alerts not published; they will be sent again', { sink: record.name, count: alerts.length, error: (err as Error).message });
        return;
      }
    }
    this.outbox = [];
    for (const a of alerts) {
      this.options.ledger.record(a);
      this.counts.alerts[a.change]++;
      this.options.metrics.findings.inc({ kind: a.finding.kind, state: a.change === 'potential' ? 'potential' : (a.finding.state ?? 'active') });
    }
    for (const sink of others) {
      try {
        await sink.publish(alerts);
      } catch (err) {
        this.options.logger.error('a sink failed to take alerts', { sink: sink.name, count: alerts.length, error: (err as Error).message });
      }
    }
    const done = this.now();
    for (const o of batch) {
      if (o.receivedAtMs !== undefined) this.options.metrics.detectionLatency.observe(Math.max(0, done - o.receivedAtMs) / 1000);
    }
  }

  /** Graph gauges: at most once a second, since counting walks the graph. */
  private updateGauges(force: boolean): void {
    const now = this.now();
    if (!force && now - this.lastGaugesAt < 1000) return;
    this.lastGaugesAt = now;
    this.options.metrics.graph(this.detector.stats());
  }
}
