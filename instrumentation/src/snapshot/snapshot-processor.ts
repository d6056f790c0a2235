/**
 * Partial-span snapshots: a deadlocked span never ends, so an exporter that ships only ended spans never
 * shows the deadlock. This SpanProcessor watches the spans that are running; once a second (by default)
 * it finds those with an open wait or hold and exports a snapshot of each through the application's own
 * exporter: the same trace and span ids, the events so far, no end time, and `span.partial = true`.
 *
 * - A span is snapshotted at most once per interval, only while it is running, and only when its events
 *   changed since its last snapshot (or `refreshMillis` passed, so a long hang stays visible).
 * - With it go its running ancestors in this process, under the same rule, though they have no wait of
 *   their own: a chain of waits crosses them (the caller's CLIENT span waits for the SERVER span, which
 *   waits for its open child, say a database transaction's span with the `lock.wait`), and the detector
 *   can follow the chain only if it sees every link of it.
 * - Snapshots go straight to the exporter, not through a batch processor, so they are out within one
 *   interval. One snapshot export is in flight at a time; a tick that finds one still running is skipped.
 * - It also stamps every span started inside a task (see `task.ts`) with that `task.id`.
 * - The timer is unref'd, so it never keeps the process alive; `shutdown()` is idempotent and does not
 *   shut the exporter down (its batch processor owns it).
 *
 * With the Node SDK, one line in the configuration:
 *   spanProcessors: [new BatchSpanProcessor(exporter), waitgraphSnapshots(exporter)]
 */
import { diag, TraceFlags, type Context } from '@opentelemetry/api';
import type { ReadableSpan, Span, SpanExporter, SpanProcessor } from '@opentelemetry/sdk-trace';
import { Type, type Static } from '@sinclair/typebox';
import { ATTR } from '../../../schemas/index.js';
import { checkOptions } from '../core/options.js';
import { swallow } from '../core/recorder.js';
import { currentTaskId, spanTasks } from '../core/task.js';
import { oldestOpen } from './open-waits.js';

/** Options of the snapshot processor. */
export const WaitSnapshotOptionsSchema = Type.Object(
  {
    /** How often running spans are checked, and so the least time between two snapshots of a span. Default: 1000. */
    intervalMillis: Type.Optional(Type.Integer({ minimum: 10 })),
    /** How long a wait or hold must have been open before its span is snapshotted. Default: 250. */
    minOpenMillis: Type.Optional(Type.Integer({ minimum: 0 })),
    /**
     * How often an unchanged snapshot of a still-blocked span is sent again. Default: 1000, the spec's
     * "every second": the detector distrusts a span without a fresh snapshot for its `--stale-after`
     * (10 s), so a refresh must come well within it.
     */
    refreshMillis: Type.Optional(Type.Integer({ minimum: 10 })),
    /** The most snapshots one export carries; the rest wait for the next tick. Default: 512. */
    maxBatch: Type.Optional(Type.Integer({ minimum: 1 })),
    /** How long an export may take before the next one is allowed anyway. Default: 30000. */
    exportTimeoutMillis: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  { additionalProperties: false },
);
/** Options of the snapshot processor (the static type of the schema above). */
export type WaitSnapshotOptions = Static<typeof WaitSnapshotOptionsSchema>;

interface Sent {
  /** How many events the last snapshot carried. */
  events: number;
  /** When it was taken, unix ms. */
  at: number;
}

const ZERO: [number, number] = [0, 0];

function idOf(ctx: { traceId: string; spanId: string }): string {
  return ctx.traceId + ctx.spanId;
}

/** A copy of a running span as a snapshot: same ids, events so far, no end, `span.partial = true`. */
export function snapshotOf(span: ReadableSpan): ReadableSpan {
  const spanContext = span.spanContext();
  return {
    name: span.name,
    kind: span.kind,
    spanContext: () => spanContext,
    parentSpanContext: span.parentSpanContext,
    startTime: span.startTime,
    endTime: ZERO,
    duration: ZERO,
    ended: false,
    status: { ...span.status },
    attributes: { ...span.attributes, [ATTR.SPAN_PARTIAL]: true },
    links: span.links.slice(),
    events: span.events.slice(),
    resource: span.resource,
    instrumentationScope: span.instrumentationScope,
    droppedAttributesCount: span.droppedAttributesCount,
    droppedEventsCount: span.droppedEventsCount,
    droppedLinksCount: span.droppedLinksCount,
  };
}

/** Exports snapshots of running spans that have an open wait or hold. */
export class WaitSnapshotSpanProcessor implements SpanProcessor {
  readonly #exporter: SpanExporter;
  readonly #interval: number;
  readonly #minOpen: number;
  readonly #refresh: number;
  readonly #maxBatch: number;
  readonly #exportTimeout: number;
  readonly #live = new Set<Span>();
  /** The running spans by trace and span id, to find a snapshotted span's running ancestors. */
  readonly #byId = new Map<string, Span>();
  readonly #sent = new WeakMap<Span, Sent>();
  #timer: NodeJS.Timeout | undefined;
  #inFlight: Promise<void> | undefined;
  #inFlightSince = 0;
  #shutdown: Promise<void> | undefined;

  constructor(exporter: SpanExporter, options?: WaitSnapshotOptions) {
    const o = checkOptions(WaitSnapshotOptionsSchema, options, 'WaitSnapshotSpanProcessor');
    this.#exporter = exporter;
    this.#interval = o.intervalMillis ?? 1000;
    this.#minOpen = o.minOpenMillis ?? 250;
    this.#refresh = o.refreshMillis ?? 1_000;
    this.#maxBatch = o.maxBatch ?? 512;
    this.#exportTimeout = o.exportTimeoutMillis ?? 30_000;
  }

  onStart(span: Span, parentContext: Context): void {
    if (this.#shutdown !== undefined) return;
    try {
      const task = currentTaskId(parentContext);
      if (task !== undefined) {
        span.setAttribute(ATTR.TASK_ID, task);
        spanTasks.set(span, task);
      }
      if ((span.spanContext().traceFlags & TraceFlags.SAMPLED) === 0) return;
      this.#live.add(span);
      this.#byId.set(idOf(span.spanContext()), span);
      if (this.#timer === undefined) {
        this.#timer = setInterval(() => this.#tick(), this.#interval);
        this.#timer.unref();
      }
    } catch (err) {
      swallow('watching a span for snapshots', err);
    }
  }

  onEnd(span: ReadableSpan): void {
    this.#live.delete(span as Span);
    this.#byId.delete(idOf(span.spanContext()));
  }

  /** Waits for the snapshot export in flight, if any. */
  async forceFlush(): Promise<void> {
    await this.#inFlight;
  }

  /** Stops the timer and waits for the export in flight. Idempotent. */
  shutdown(): Promise<void> {
    this.#shutdown ??= (async () => {
      if (this.#timer !== undefined) clearInterval(this.#timer);
      this.#timer = undefined;
      this.#live.clear();
      this.#byId.clear();
      await this.#inFlight;
    })();
    return this.#shutdown;
  }

  #tick(): void {
    try {
      const now = Date.now();
      if (this.#inFlight !== undefined && now - this.#inFlightSince < this.#exportTimeout) return;
      const batch = this.#due(now);
      if (batch.length > 0) this.#export(batch, now);
    } catch (err) {
      swallow('taking span snapshots', err);
    }
  }

  /** The snapshots due now, noting them as sent. */
  #due(now: number): ReadableSpan[] {
    const batch: ReadableSpan[] = [];
    const taken = new Set<Span>();
    for (const span of this.#live) {
      if (span.ended) {
        this.#live.delete(span);
        this.#byId.delete(idOf(span.spanContext()));
        continue;
      }
      if (span.events.length === 0 || taken.has(span)) continue;
      const since = oldestOpen(span.events, span.attributes[ATTR.TASK_ID]);
      if (since === undefined || now - since < this.#minOpen) continue;
      // the span, then its running ancestors here: each sent when it changed or its refresh is due
      for (let s: Span | undefined = span; s !== undefined && !s.ended && !taken.has(s); s = this.#parentOf(s)) {
        taken.add(s);
        const sent = this.#sent.get(s);
        if (sent !== undefined && sent.events === s.events.length && now - sent.at < this.#refresh) continue;
        batch.push(snapshotOf(s));
        this.#sent.set(s, { events: s.events.length, at: now });
      }
      if (batch.length >= this.#maxBatch) break;
    }
    return batch;
  }

  /** The running parent of `span` in this process, if any. */
  #parentOf(span: Span): Span | undefined {
    const parent = span.parentSpanContext;
    return parent === undefined || parent.isRemote ? undefined : this.#byId.get(idOf(parent));
  }

  #export(batch: ReadableSpan[], now: number): void {
    this.#inFlightSince = now;
    const done = new Promise<void>((resolve) => {
      try {
        this.#exporter.export(batch, (result) => {
          // 0 is ExportResultCode.SUCCESS
          if (result.code !== 0) diag.warn(`waitgraph: exporting ${batch.length} span snapshots failed`, result.error);
          resolve();
        });
      } catch (err) {
        swallow('exporting span snapshots', err);
        resolve();
      }
    });
    const flight = done.then(() => {
      if (this.#inFlight === flight) this.#inFlight = undefined;
    });
    this.#inFlight = flight;
  }
}

/** The snapshot processor for `exporter`: add it next to the exporter's own batch processor. */
export function waitgraphSnapshots(exporter: SpanExporter, options?: WaitSnapshotOptions): WaitSnapshotSpanProcessor {
  return new WaitSnapshotSpanProcessor(exporter, options);
}
