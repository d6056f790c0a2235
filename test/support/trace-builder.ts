/**
 * A small fluent builder of recorded spans, for scenario fixtures and tests.
 *
 * It writes the OTLP/HTTP JSON encoding of `TracesData` (`{"resourceSpans": [...]}`): hex ids, unix
 * nanoseconds as decimal strings, span kinds as numbers, attributes as `{key, value: {stringValue |
 * intValue | doubleValue | boolValue | arrayValue}}`. Everything is deterministic so generated files are
 * stable: trace and span ids are hashes of the builder's name, the trace's name and the span's position,
 * and times are millisecond offsets from one fixed base time.
 *
 * A span that is never ended is written as a partial-span snapshot (`endTimeUnixNano` "0" and
 * `span.partial = true`), the way an emitter ships a span that is stuck in a wait. `snapshot()` writes an
 * earlier, stale version of a span: the events recorded up to a given time and no end.
 */
import { createHash } from 'node:crypto';
import { ATTR } from '../../schemas/index.js';
import { SpanKind } from '../../processor/src/model/span.js';

/** The fixed base time of every fixture: 2025-03-14T09:00:00Z, in unix nanoseconds. */
export const BASE_TIME_UNIX_NANO = 1_741_942_800_000_000_000n;

/** An attribute value as a builder takes it; integers become `intValue`, other numbers `doubleValue`. */
export type AttrInput = string | number | boolean | readonly (string | number | boolean)[];

/** Attributes as a builder takes them. */
export type AttrsInput = Record<string, AttrInput>;

/** OTLP JSON `AnyValue`. */
export type OtlpAnyValue =
  | { stringValue: string }
  | { intValue: string }
  | { doubleValue: number }
  | { boolValue: boolean }
  | { arrayValue: { values: OtlpAnyValue[] } };

/** OTLP JSON `KeyValue`. */
export interface OtlpKeyValue {
  key: string;
  value: OtlpAnyValue;
}

/** OTLP JSON `Span.Event`. */
export interface OtlpEvent {
  timeUnixNano: string;
  name: string;
  attributes: OtlpKeyValue[];
}

/** OTLP JSON `Span`. */
export interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: SpanKind;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: OtlpKeyValue[];
  events: OtlpEvent[];
  status?: { code: number; message?: string };
}

/** OTLP JSON `TracesData` (the body of an `ExportTraceServiceRequest`). */
export interface OtlpTracesData {
  resourceSpans: {
    resource: { attributes: OtlpKeyValue[] };
    scopeSpans: { scope: { name: string; version?: string }; spans: OtlpSpan[] }[];
  }[];
}

/** `thread.name` (OTel semantic conventions): inherited by same-thread children like `thread.id`. */
export const SEMCONV_THREAD_NAME = 'thread.name';

/** The OTLP status code of a failed span. */
const STATUS_ERROR = 2;

/** Hex digits of a SHA-256 of `seed`: `bytes` bytes, as lowercase hex. */
export function hexId(seed: string, bytes: 8 | 16): string {
  return createHash('sha256').update(seed).digest('hex').slice(0, bytes * 2);
}

/** Unix nanoseconds, as OTLP JSON writes them, of `ms` milliseconds after the base time. */
export function nanos(ms: number): string {
  return (BASE_TIME_UNIX_NANO + BigInt(Math.round(ms * 1e6))).toString();
}

/** Encodes one attribute value as OTLP JSON `AnyValue`. */
export function anyValue(v: AttrInput): OtlpAnyValue {
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  // OTLP JSON writes 64-bit integers as decimal strings (the protobuf JSON mapping).
  if (typeof v === 'number') return Number.isInteger(v) ? { intValue: String(v) } : { doubleValue: v };
  return { arrayValue: { values: v.map(anyValue) } };
}

/** Encodes attributes as OTLP JSON `KeyValue`s, in insertion order. */
export function keyValues(attrs: AttrsInput): OtlpKeyValue[] {
  return Object.entries(attrs).map(([key, v]) => ({ key, value: anyValue(v) }));
}

/** A service instance: the resource its spans are written under. */
export interface Resource {
  readonly serviceName: string;
  readonly instanceId?: string;
  /** Resource attributes, `service.name` and `service.instance.id` included. */
  readonly attributes: AttrsInput;
  /** The instrumentation scope its spans are written under. */
  readonly scope: string;
}

/** Options of a new span. */
export interface SpanOptions {
  /** Span kind; default INTERNAL. */
  kind?: SpanKind;
  /** Start, in milliseconds after the base time; default the parent's start, or 0 for a root. */
  at?: number;
  /**
   * Span attributes. A child in the same service instance inherits its parent's `task.id`, `thread.id`
   * and `thread.name` (the same thread of control) unless these set a task of their own; default none.
   */
  attrs?: AttrsInput;
  /** The service instance of the span; default the parent's. Required for a root span. */
  resource?: Resource;
}

/** One span under construction. Methods return `this` so calls chain. */
export class SpanBuilder {
  /** Span events in the order they were recorded. */
  readonly events: { at: number; name: string; attrs: AttrsInput }[] = [];
  /** End time in milliseconds after the base time; undefined while the span is open. */
  endAt?: number;
  private status?: { code: number; message?: string };
  private childCount = 0;

  /** Use `TraceBuilder.root()` or `SpanBuilder.child()`. */
  constructor(
    readonly trace: TraceBuilder,
    readonly spanId: string,
    readonly parent: SpanBuilder | undefined,
    readonly name: string,
    readonly kind: SpanKind,
    readonly startAt: number,
    readonly attrs: AttrsInput,
    readonly resource: Resource,
  ) {}

  /** Records a span event at `at` ms. Events must lie within the span and come in time order. */
  event(name: string, at: number, attrs: AttrsInput = {}): this {
    if (at < this.startAt) throw new Error(`${this.name}: event ${name} at ${at} ms precedes the span start ${this.startAt} ms`);
    const last = this.events[this.events.length - 1];
    if (last && at < last.at) throw new Error(`${this.name}: event ${name} at ${at} ms precedes the previous event`);
    if (this.endAt !== undefined) throw new Error(`${this.name}: event ${name} after the span ended`);
    this.events.push({ at, name, attrs });
    return this;
  }

  /** Ends the span at `at` ms, optionally as failed. */
  end(at: number, error?: string): this {
    const last = this.events[this.events.length - 1];
    if (at < this.startAt || (last && at < last.at)) throw new Error(`${this.name}: end at ${at} ms precedes its start or events`);
    this.endAt = at;
    if (error !== undefined) this.status = { code: STATUS_ERROR, message: error };
    return this;
  }

  /** Creates a child span in the same trace; see `SpanOptions` for what it inherits. */
  child(name: string, opts: SpanOptions = {}): SpanBuilder {
    const resource = opts.resource ?? this.resource;
    const inherited: AttrsInput = {};
    const ownTask = opts.attrs && (opts.attrs[ATTR.TASK_ID] !== undefined || opts.attrs[ATTR.THREAD_ID] !== undefined);
    if (resource === this.resource && !ownTask) {
      for (const key of [ATTR.TASK_ID, ATTR.THREAD_ID, SEMCONV_THREAD_NAME]) {
        const v = this.attrs[key];
        if (v !== undefined) inherited[key] = v;
      }
    }
    const id = hexId(`${this.spanId}/${this.childCount++}/${name}`, 8);
    return this.trace.add(
      new SpanBuilder(this.trace, id, this, name, opts.kind ?? SpanKind.INTERNAL, opts.at ?? this.startAt, { ...inherited, ...opts.attrs }, resource),
    );
  }

  /**
   * The span in OTLP JSON: its final state, or with `upTo` a partial snapshot of it holding the events
   * recorded up to `upTo` ms (a stale earlier version when the span has gone on since).
   */
  toOtlp(upTo?: number): OtlpSpan {
    const open = upTo !== undefined || this.endAt === undefined;
    if (upTo !== undefined && (upTo < this.startAt || (this.endAt !== undefined && upTo >= this.endAt))) {
      throw new Error(`${this.name}: no snapshot at ${upTo} ms, outside its open time`);
    }
    const events = upTo === undefined ? this.events : this.events.filter((e) => e.at <= upTo);
    const span: OtlpSpan = {
      traceId: this.trace.traceId,
      spanId: this.spanId,
      ...(this.parent ? { parentSpanId: this.parent.spanId } : {}),
      name: this.name,
      kind: this.kind,
      startTimeUnixNano: nanos(this.startAt),
      endTimeUnixNano: open ? '0' : nanos(this.endAt!),
      attributes: keyValues(open ? { ...this.attrs, [ATTR.SPAN_PARTIAL]: true } : this.attrs),
      events: events.map((e) => ({ timeUnixNano: nanos(e.at), name: e.name, attributes: keyValues(e.attrs) })),
    };
    if (this.status && !open) span.status = this.status;
    return span;
  }
}

/** One trace: its id and spans. */
export class TraceBuilder {
  /** 32 hex digits, derived from the fixture's and the trace's names. */
  readonly traceId: string;
  private rootCount = 0;

  /** Use `FixtureBuilder.trace()`. */
  constructor(
    private readonly fixture: FixtureBuilder,
    readonly name: string,
  ) {
    this.traceId = hexId(`${fixture.name}/${name}`, 16);
  }

  /** Creates a root span (no parent) in `opts.resource`. */
  root(name: string, opts: SpanOptions & { resource: Resource }): SpanBuilder {
    const id = hexId(`${this.traceId}/root/${this.rootCount++}/${name}`, 8);
    return this.add(new SpanBuilder(this, id, undefined, name, opts.kind ?? SpanKind.INTERNAL, opts.at ?? 0, { ...opts.attrs }, opts.resource));
  }

  /** Registers a new span with the fixture; used by `root()` and `SpanBuilder.child()`. */
  add(span: SpanBuilder): SpanBuilder {
    return this.fixture.register(span);
  }
}

/** One version of a span to write: its final state, or a snapshot up to some time. */
export interface SpanVersion {
  span: SpanBuilder;
  /** Snapshot cut in ms; absent for the span's final state. */
  upTo?: number;
}

/** The builder of one fixture: its service instances, traces and spans, and their OTLP JSON. */
export class FixtureBuilder {
  private readonly spans: SpanBuilder[] = [];
  private readonly traces = new Map<string, TraceBuilder>();

  /** `name` seeds every id, so two fixtures never share ids by accident. */
  constructor(readonly name: string) {}

  /**
   * A service instance. `extra` adds resource attributes (`telemetry.sdk.language`, ...); `scope` names
   * the instrumentation scope, default `waitgraph`.
   */
  resource(serviceName: string, instanceId?: string, extra: AttrsInput = {}, scope = 'waitgraph'): Resource {
    const attributes: AttrsInput = { [ATTR.SERVICE_NAME]: serviceName };
    if (instanceId !== undefined) attributes[ATTR.SERVICE_INSTANCE_ID] = instanceId;
    return { serviceName, instanceId, attributes: { ...attributes, ...extra }, scope };
  }

  /** The trace called `name`, created on first use. */
  trace(name: string): TraceBuilder {
    let t = this.traces.get(name);
    if (!t) this.traces.set(name, (t = new TraceBuilder(this, name)));
    return t;
  }

  /** Registers a span; used by the trace builders. */
  register(span: SpanBuilder): SpanBuilder {
    this.spans.push(span);
    return span;
  }

  /** Every span, in creation order. */
  allSpans(): readonly SpanBuilder[] {
    return this.spans;
  }

  /** The final version of every span, in creation order. */
  finalVersions(): SpanVersion[] {
    return this.spans.map((span) => ({ span }));
  }

  /**
   * OTLP JSON of the given span versions, in the given order: consecutive spans of one service instance
   * share a `resourceSpans` entry, so the order of the list is the order in the file.
   */
  otlp(versions: readonly SpanVersion[] = this.finalVersions()): OtlpTracesData {
    const out: OtlpTracesData = { resourceSpans: [] };
    let current: Resource | undefined;
    for (const v of versions) {
      if (v.span.resource !== current) {
        current = v.span.resource;
        out.resourceSpans.push({ resource: { attributes: keyValues(current.attributes) }, scopeSpans: [{ scope: { name: current.scope }, spans: [] }] });
      }
      out.resourceSpans[out.resourceSpans.length - 1].scopeSpans[0].spans.push(v.span.toOtlp(v.upTo));
    }
    return out;
  }
}

/**
 * A deterministic shuffle of a copy of `items`: each item is ranked by a hash of `seed` and its
 * position, so the same seed always gives the same order.
 */
export function shuffled<T>(items: readonly T[], seed: string): T[] {
  return items
    .map((item, i) => ({ item, rank: hexId(`${seed}/${i}`, 8) }))
    .sort((a, b) => (a.rank < b.rank ? -1 : a.rank > b.rank ? 1 : 0))
    .map((r) => r.item);
}
