/**
 * Snapshots of a proxy's spans in flight. A sidecar proxy records no wait events (the contract treats its
 * spans as hops), so waitgraph's own snapshot processor, which snapshots spans with an open wait or hold,
 * never sends them. But a chain through a proxy needs the proxy's open spans to be seen while it hangs:
 * the caller's CLIENT span waits for the proxy's SERVER span, which waits for its newest attempt, whose
 * child is the upstream's SERVER span. So this processor snapshots every span that has been running for
 * `minOpenMillis`, with waitgraph's `snapshotOf` (same ids, no end, `span.partial = true`), through the
 * proxy's own exporter; a real mesh proxy would need the same from its tracer.
 *
 * Timers are unref'd; one export is in flight at a time; `shutdown()` is idempotent and leaves the
 * exporter to its batch processor.
 */
import { diag } from '@opentelemetry/api';
import type { ReadableSpan, Span, SpanExporter, SpanProcessor } from '@opentelemetry/sdk-trace';
import { snapshotOf } from 'waitgraph/instrumentation';

/** Options of `HopSnapshotSpanProcessor`. */
export interface HopSnapshotOptions {
  /** How often spans in flight are checked. Default 1000 (as waitgraph's snapshot processor). */
  intervalMillis?: number;
  /** How long a span must have been running before it is snapshotted. Default 250. */
  minOpenMillis?: number;
  /** How often a span still running is snapshotted again. Default 5000. */
  refreshMillis?: number;
}

/** Exports snapshots of every span that runs longer than `minOpenMillis`. */
export class HopSnapshotSpanProcessor implements SpanProcessor {
  readonly #exporter: SpanExporter;
  readonly #interval: number;
  readonly #minOpen: number;
  readonly #refresh: number;
  /** Running spans and when each was last snapshotted (0: never). */
  readonly #live = new Map<Span, number>();
  #timer: NodeJS.Timeout | undefined;
  #inFlight = false;
  #stopped = false;

  constructor(exporter: SpanExporter, options: HopSnapshotOptions = {}) {
    this.#exporter = exporter;
    this.#interval = options.intervalMillis ?? 1000;
    this.#minOpen = options.minOpenMillis ?? 250;
    this.#refresh = options.refreshMillis ?? 5000;
  }

  onStart(span: Span): void {
    if (this.#stopped) return;
    this.#live.set(span, 0);
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => this.#tick(), this.#interval);
      this.#timer.unref();
    }
  }

  onEnd(span: ReadableSpan): void {
    this.#live.delete(span as Span);
  }

  async forceFlush(): Promise<void> {}

  async shutdown(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#live.clear();
  }

  #tick(): void {
    if (this.#inFlight) return;
    const now = Date.now();
    const batch: ReadableSpan[] = [];
    for (const [span, sentAt] of this.#live) {
      if (span.ended) {
        this.#live.delete(span);
        continue;
      }
      const startedAt = span.startTime[0] * 1e3 + span.startTime[1] / 1e6;
      if (now - startedAt < this.#minOpen || (sentAt > 0 && now - sentAt < this.#refresh)) continue;
      batch.push(snapshotOf(span));
      this.#live.set(span, now);
    }
    if (batch.length === 0) return;
    this.#inFlight = true;
    try {
      this.#exporter.export(batch, (result) => {
        this.#inFlight = false;
        // 0 is ExportResultCode.SUCCESS
        if (result.code !== 0) diag.warn(`exporting ${batch.length} proxy span snapshots failed`, result.error);
      });
    } catch (err) {
      this.#inFlight = false;
      diag.warn('exporting proxy span snapshots failed', err);
    }
  }
}
