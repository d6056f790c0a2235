/**
 * Wait records: what the decode stage keeps of the spans it reads, and their wire form on the
 * `waitgraph.waits` topic (`schemas/src/wait-record.ts`).
 *
 * The filter. Detection reads a span for its wait events, for being open (an open span waits for its open
 * children, a CLIENT span for its SERVER span), and as a link: a retry attempt (the caller waits only for
 * the newest), a proxy hop, an ancestor that inherits the holds of an ended child. An ended span with no
 * wait events, of any kind, waits for nothing and holds nothing in the present view: a caller no longer
 * waits for a SERVER span that ended, and a wait on a span detection has not seen is no requirement. So a
 * span is kept when any of these holds:
 * - it has an event of the wait vocabulary;
 * - it is open (a partial snapshot);
 * - it is a retry attempt (`http.request.resend_count`) or a proxy hop (`component = proxy`, or a
 *   configured proxy service);
 * - it is an ancestor of an ended span that has wait events (the chain a hold is handed over along, and the
 *   chain a deadlock that a timeout broke is found along): found in the same input message, or in a later
 *   one, as the builder remembers the ancestors a walk did not find in its message (spans end before their
 *   parents and are most often exported first);
 * - it is the ended version of a span the builder passed open (a partial snapshot before it), or the span
 *   of a wait log record it passed: only that version ends the span in the graph (`WaitRecordBuilder`).
 * The loss: an ancestor that came in an earlier message than the span with wait events below it (or to
 * another decode instance) is cut, and a hold handed over across it stays with the ended span (see
 * docs/architecture.md). `waitgraph analyze` has the whole input in view and loses nothing (`WholeInputCut`).
 *
 * The cut. Of a kept span only the fields the engine reads travel: ids, parent, name, kind, times, service
 * and instance, the task attributes, and the wait-vocabulary events with their vocabulary attributes.
 * Every version of a span that passes is cut alike, so the engine's choice among versions (ended beats open,
 * then more events, then later events) is the same on wait records as on the spans.
 */
import {
  ATTR,
  EVENT_NAMES,
  PROXY_COMPONENT,
  WAIT_RECORD_VERSION,
  type WaitRecordBatch,
  type WaitRecordEvent,
  type WaitRecordLogEvent,
  type WaitRecordSpan,
  type WaitResource,
} from '../../../schemas/index.js';
import { DecodeError } from '../decode/decode-error.js';
import { makeEvent, makeLogEvent, makeSpan } from '../decode/records.js';
import type { AttrValue, Attributes, DecodedBatch, LogEventRecord, SpanEventRecord, SpanRecord } from '../model/span.js';

export const WAIT_EVENTS: ReadonlySet<string> = new Set(EVENT_NAMES);
/** Event attributes that travel: the vocabulary's. */
const EVENT_ATTRS: ReadonlySet<string> = new Set(Object.values(ATTR));
/** Span attributes that travel: those the contract gives meaning to on a span. */
export const SPAN_ATTRS = [ATTR.TASK_ID, ATTR.THREAD_ID, ATTR.TASK_DETACHED, ATTR.HTTP_RESEND_COUNT, ATTR.COMPONENT, ATTR.SPAN_PARTIAL] as const;
/** The span attributes the filter and the cut read: a decoder may skip the others. */
export const WAIT_SPAN_ATTRIBUTES: ReadonlySet<string> = new Set(SPAN_ATTRS);

/** Options of the filter. Every field is optional. */
export interface WaitFilterOptions {
  /** Service names whose spans are proxy hops, besides spans with `component = proxy`. Default: none. */
  proxyServices?: readonly string[];
  /** Keep the ancestors of ended spans that have wait events (in the message, or `wanted` later). Default: true. */
  keepAncestors?: boolean;
  /**
   * Keep an ended span that this says was kept while open (a partial snapshot before it): detection took
   * the span as open, and only its ended version ends it there. Default: none.
   */
  keptOpen?: (s: SpanRecord) => boolean;
  /**
   * Keep a span that this says an ancestor walk of an earlier message looked for (`onChainEnd`), and walk
   * on from it: the chain of a span with wait events that came before its ancestors. Default: none.
   */
  wanted?: (s: SpanRecord) => boolean;
  /** Hears where an ancestor walk left the message: the trace and span id of the parent it did not find. */
  onChainEnd?: (traceId: string, parentSpanId: string) => void;
}

/** Whether a span has an event of the wait vocabulary. */
export function hasWaitEvent(s: SpanRecord): boolean {
  for (const e of s.events) if (WAIT_EVENTS.has(e.name)) return true;
  return false;
}

/**
 * The filter: the spans of `spans` that detection needs (see the module comment), in their order.
 * Pure; the single-instance path may use it too, before `Detector.addBatch`.
 */
export function selectWaitSpans(spans: readonly SpanRecord[], options: WaitFilterOptions = {}): SpanRecord[] {
  const proxies = options.proxyServices?.length ? new Set(options.proxyServices) : undefined;
  const keep = new Uint8Array(spans.length);
  let chains = false;
  for (let i = 0; i < spans.length; i++) {
    const s = spans[i];
    const waits = hasWaitEvent(s);
    if (
      waits ||
      s.endTimeUnixNano === 0 ||
      (options.keptOpen !== undefined && options.keptOpen(s)) ||
      s.attributes[ATTR.HTTP_RESEND_COUNT] !== undefined ||
      s.attributes[ATTR.COMPONENT] === PROXY_COMPONENT ||
      (proxies !== undefined && proxies.has(s.resource[ATTR.SERVICE_NAME] as string))
    ) {
      keep[i] = waits && s.endTimeUnixNano > 0 && s.parentSpanId !== undefined ? 2 : 1;
    }
    if (options.wanted !== undefined && options.wanted(s)) keep[i] = s.parentSpanId !== undefined ? 2 : 1;
    if (keep[i] === 2) chains = true;
  }
  if (chains && (options.keepAncestors ?? true)) {
    const index = new Map<string, number>();
    for (let i = 0; i < spans.length; i++) index.set(spans[i].spanId, i);
    const walked = new Uint8Array(spans.length);
    for (let i = 0; i < spans.length; i++) {
      if (keep[i] !== 2) continue;
      let cur = spans[i];
      for (;;) {
        if (cur.parentSpanId === undefined) break;
        const j = index.get(cur.parentSpanId);
        // Not in the message (nor the message's span of that id of this trace): a later message may bring it.
        if (j === undefined || spans[j].traceId !== cur.traceId) {
          options.onChainEnd?.(cur.traceId, cur.parentSpanId);
          break;
        }
        if (walked[j]) break;
        walked[j] = 1;
        if (!keep[j]) keep[j] = 1;
        cur = spans[j];
      }
    }
  }
  const out: SpanRecord[] = [];
  for (let i = 0; i < spans.length; i++) if (keep[i]) out.push(spans[i]);
  return out;
}

/** An attribute value as it may travel: scalars and arrays of scalars. */
export type WireValue = string | number | boolean | (string | number | boolean)[];
/** Attributes as they travel. */
export type WireAttrs = Record<string, WireValue>;

export function wireValue(v: AttrValue): WireValue | undefined {
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
  if (Array.isArray(v)) {
    const out: (string | number | boolean)[] = [];
    for (const x of v) if (typeof x === 'string' || typeof x === 'number' || typeof x === 'boolean') out.push(x);
    return out;
  }
  return undefined;
}

export function eventAttrs(a: Attributes): WireAttrs | undefined {
  let out: WireAttrs | undefined;
  for (const k in a) {
    if (!EVENT_ATTRS.has(k)) continue;
    const v = wireValue(a[k]);
    if (v !== undefined) (out ??= {})[k] = v;
  }
  return out;
}

/** The span attributes that travel, of a span's. */
export function spanAttrs(a: Attributes): WireAttrs | undefined {
  let out: WireAttrs | undefined;
  for (const k of SPAN_ATTRS) {
    const raw = a[k];
    if (raw === undefined) continue;
    const v = wireValue(raw);
    if (v !== undefined) (out ??= {})[k] = v;
  }
  return out;
}

/** A wait event as it travels. */
function wireEvent(name: string, time: number, attributes: WireAttrs | undefined): WaitRecordEvent {
  return attributes === undefined ? { name, time } : { name, time, attributes };
}

/**
 * The attributes of a cut span or event that has none (`cutOtlpTracesProto`, `fromWaitRecords`): one
 * shared empty object.
 */
export const NO_ATTRS: Attributes = Object.freeze({}) as Attributes;

/** The spans of one source message, decoded and cut (`cutOtlpTracesProto`), and what the message held. */
export interface CutSpans {
  /** The spans detection reads, cut: only the attributes and the events that travel. */
  spans: SpanRecord[];
  /** Spans the message held. */
  spansIn: number;
  /** Wait events kept: every wait event of the message. */
  waitEvents: number;
}

/** Statistics of a builder: what it read and what it kept. */
export interface WaitRecordCounts {
  /** Spans read. */
  spansIn: number;
  /** Spans kept. */
  spansKept: number;
  /** Span events read, of any name. */
  eventsIn: number;
  /** Wait-vocabulary events kept (span events and log events). */
  eventsKept: number;
  /** Log events read. */
  logEventsIn: number;
}

/**
 * A number for a span id, from its 8 bytes at `p`: equal ids give equal numbers (`spanIdKeyOfHex` gives the
 * same from the id's hex), different ids mostly different ones.
 */
export function spanIdKey(b: Uint8Array, p: number): number {
  const hi = (b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3];
  const lo = (b[p + 4] << 24) | (b[p + 5] << 16) | (b[p + 6] << 8) | b[p + 7];
  return hi ^ Math.imul(lo, 0x9e3779b1);
}

/** `spanIdKey` of a span id given as 16 hex digits. */
export function spanIdKeyOfHex(hex: string): number {
  const hi = parseInt(hex.slice(0, 8), 16) | 0;
  const lo = parseInt(hex.slice(8, 16), 16) | 0;
  return hi ^ Math.imul(lo, 0x9e3779b1);
}

/**
 * How many spans a builder remembers of each kind (see `WaitRecordBuilder.open` and `wanted`). Past that,
 * the oldest are let go: if an open one ends after all, its ended version may be cut, and detection then
 * sees it open until it goes stale (`--stale-after`), as it would a span whose emitter stopped; if a wanted
 * one comes after all, it is cut as though its descendant's wait events were in no message of its own.
 */
const REMEMBERED = 100_000;

/** Span ids with their trace ids, the oldest let go past `REMEMBERED`, with a numeric first test. */
export class SpanMemory {
  private readonly ids = new Map<string, string>();
  /** How many span ids have each `spanIdKey`: a cheap first test, before any id is made a string. */
  private readonly keys = new Map<number, number>();

  has(traceId: string, spanId: string): boolean {
    return this.ids.size !== 0 && this.ids.get(spanId) === traceId;
  }

  /** False when it certainly holds no span id of this `spanIdKey`: a decoder tests a span without making its ids strings. */
  mayHave(spanIdKey: number): boolean {
    return this.ids.size !== 0 && this.keys.has(spanIdKey);
  }

  /** Remembers a span, as the newest. */
  add(traceId: string, spanId: string): void {
    const ids = this.ids;
    if (!ids.delete(spanId)) this.count(spanId, 1);
    ids.set(spanId, traceId);
    if (ids.size > REMEMBERED) this.delete(ids.keys().next().value as string);
  }

  delete(spanId: string): void {
    if (this.ids.delete(spanId)) this.count(spanId, -1);
  }

  private count(spanId: string, by: number): void {
    const key = spanIdKeyOfHex(spanId);
    const n = (this.keys.get(key) ?? 0) + by;
    if (n === 0) this.keys.delete(key);
    else this.keys.set(key, n);
  }
}

/**
 * Builds wait-record batches: `add` the decoded input of one or more source messages, then `take` the
 * batch (one message of the waits topic). Not thread-safe, not shared: one per decode stage.
 */
export class WaitRecordBuilder {
  private readonly filter: WaitFilterOptions;
  /**
   * The open spans it passed (partial snapshots), by span id, with their trace id: their ended versions
   * pass too, whatever the filter would say of them, or
   * detection would go on taking them as open. The snapshot and its ended version come through the same
   * builder where both are in one trace's partition (the Collector's `partition_traces_by_id`), or in one
   * process (`waitgraph run`). An ended version that comes before its snapshot is cut; the snapshot, which
   * is older, then shows the span open until it goes stale.
   */
  readonly open = new SpanMemory();
  /**
   * The ancestors its walks looked for and did not find in their message (the parent of the topmost span
   * of the chain of a span with wait events), and the spans of the wait log records it passed: a span that
   * comes later with such ids passes, and the walk goes on from it.
   * Spans end before their parents, and are most often exported first; with the Collector's
   * `partition_traces_by_id`, a trace's messages come to the same builder.
   */
  readonly wanted = new SpanMemory();
  private resources: WaitResource[] = [];
  private resourceIndex = new Map<string, number>();
  private spans: WaitRecordSpan[] = [];
  private logEvents: WaitRecordLogEvent[] = [];
  private observedAtMs = Number.POSITIVE_INFINITY;
  private sourceSpans = 0;
  private sourceLogEvents = 0;
  private bytesEstimate = 0;
  /** Totals since the builder was made. */
  readonly counts: WaitRecordCounts = { spansIn: 0, spansKept: 0, eventsIn: 0, eventsKept: 0, logEventsIn: 0 };

  /** Its filter's proxy services (`WaitFilterOptions.proxyServices`), if any. */
  readonly proxies: ReadonlySet<string> | undefined;
  /** Whether its filter keeps the ancestors of spans with wait events (`WaitFilterOptions.keepAncestors`). */
  readonly keepAncestors: boolean;

  constructor(options: WaitFilterOptions = {}) {
    this.filter = {
      ...options,
      keptOpen: (s) => this.open.has(s.traceId, s.spanId),
      wanted: (s) => this.wanted.has(s.traceId, s.spanId),
      onChainEnd: (traceId, spanId) => this.wanted.add(traceId, spanId),
    };
    this.proxies = options.proxyServices?.length ? new Set(options.proxyServices) : undefined;
    this.keepAncestors = options.keepAncestors ?? true;
  }

  /** Spans and log events held for the next batch. */
  get size(): number {
    return this.spans.length + this.logEvents.length;
  }

  /** A rough size of the next batch's JSON, in bytes (for cutting batches below the broker's limit). */
  get approximateBytes(): number {
    return this.bytesEstimate;
  }

  /**
   * What a kept span does to its memory: a span it wanted has come (its walk went on from it; an open one
   * is in `open` now, so its ended version passes too); an ended span ends its open version.
   */
  passed(traceId: string, spanId: string, ended: boolean): void {
    if (this.wanted.has(traceId, spanId)) this.wanted.delete(spanId);
    if (ended && this.open.has(traceId, spanId)) this.open.delete(spanId);
  }

  /** Adds the decoded input of one source message, first observed at `observedAtMs` (unix ms). */
  add(batch: DecodedBatch, observedAtMs: number): void {
    if (observedAtMs < this.observedAtMs) this.observedAtMs = observedAtMs;
    this.sourceSpans += batch.spans.length;
    this.sourceLogEvents += batch.logEvents.length;
    const c = this.counts;
    c.spansIn += batch.spans.length;
    c.logEventsIn += batch.logEvents.length;
    for (const s of batch.spans) {
      c.eventsIn += s.events.length;
      // An open span, remembered before the filter looks: its ended version may be in the same input.
      if (s.endTimeUnixNano === 0) this.open.add(s.traceId, s.spanId);
    }
    // The span of a wait log record, when it comes (in this input too), must pass as a span with the event
    // would, and its ancestors with it: detection takes a span it knows only from log records to be open,
    // and its holds pass up the chain when it ends.
    for (const e of batch.logEvents) if (WAIT_EVENTS.has(e.name)) this.wanted.add(e.traceId, e.spanId);
    for (const s of selectWaitSpans(batch.spans, this.filter)) {
      this.passed(s.traceId, s.spanId, s.endTimeUnixNano !== 0);
      let events: WaitRecordEvent[] | undefined;
      for (const e of s.events) {
        if (!WAIT_EVENTS.has(e.name)) continue;
        (events ??= []).push(wireEvent(e.name, e.timeUnixNano, eventAttrs(e.attributes)));
      }
      this.push(s, spanAttrs(s.attributes), events);
      c.spansKept++;
      c.eventsKept += events?.length ?? 0;
    }
    for (const e of batch.logEvents) {
      if (!WAIT_EVENTS.has(e.name)) continue;
      const rec: WaitRecordLogEvent = { resource: this.resourceOf(e.resource), traceId: e.traceId, spanId: e.spanId, name: e.name, time: e.timeUnixNano };
      const attributes = eventAttrs(e.attributes);
      if (attributes !== undefined) rec.attributes = attributes;
      this.logEvents.push(rec);
      c.eventsKept++;
      this.bytesEstimate += 200;
    }
  }

  /**
   * Adds the spans of one source message that `cutOtlpTracesProto` cut with this builder (which counted
   * them, and kept its memory of open spans), first observed at `observedAtMs` (unix ms): the records are
   * those `add` makes of the decoded message.
   */
  addCut(cut: CutSpans, observedAtMs: number): void {
    if (observedAtMs < this.observedAtMs) this.observedAtMs = observedAtMs;
    this.sourceSpans += cut.spansIn;
    for (const s of cut.spans) {
      const events = s.events.length === 0 ? undefined : s.events.map((e) => wireEvent(e.name, e.timeUnixNano, e.attributes === NO_ATTRS ? undefined : (e.attributes as WireAttrs)));
      this.push(s, s.attributes === NO_ATTRS ? undefined : (s.attributes as WireAttrs), events);
    }
  }

  /** Adds the record of a kept span, given its attributes and events as they travel. */
  private push(s: SpanRecord, attributes: WireAttrs | undefined, events: WaitRecordEvent[] | undefined): void {
    const rec: WaitRecordSpan = {
      resource: this.resourceOf(s.resource),
      traceId: s.traceId,
      spanId: s.spanId,
      name: s.name,
      kind: s.kind,
      start: s.startTimeUnixNano,
      end: s.endTimeUnixNano,
    };
    if (s.parentSpanId !== undefined) rec.parentSpanId = s.parentSpanId;
    if (attributes !== undefined) rec.attributes = attributes;
    if (events !== undefined) rec.events = events;
    this.spans.push(rec);
    this.bytesEstimate += 200 + s.name.length + (events?.length ?? 0) * 120;
  }

  /**
   * The batch of everything added since the last `take`, and a fresh start; undefined when nothing was
   * added at all. A batch with no records but with source counts is returned too: detection counts the
   * spans it stands for.
   */
  take(): WaitRecordBatch | undefined {
    if (this.sourceSpans === 0 && this.sourceLogEvents === 0 && this.size === 0) return undefined;
    const out: WaitRecordBatch = {
      v: WAIT_RECORD_VERSION,
      observedAtMs: Number.isFinite(this.observedAtMs) ? this.observedAtMs : 0,
      sourceSpans: this.sourceSpans,
      sourceLogEvents: this.sourceLogEvents,
      resources: this.resources,
      spans: this.spans,
      logEvents: this.logEvents,
    };
    this.resources = [];
    this.resourceIndex = new Map();
    this.spans = [];
    this.logEvents = [];
    this.observedAtMs = Number.POSITIVE_INFINITY;
    this.sourceSpans = 0;
    this.sourceLogEvents = 0;
    this.bytesEstimate = 0;
    return out;
  }

  private resourceOf(res: Attributes): number {
    const key = waitResourceKey(res);
    let i = this.resourceIndex.get(key);
    if (i === undefined) {
      i = this.resources.push(waitResource(res)) - 1;
      this.resourceIndex.set(key, i);
    }
    return i;
  }
}

/** A key for resources that travel alike (`waitResource`): the same service name and instance id. */
export function waitResourceKey(res: Attributes): string {
  const service = res[ATTR.SERVICE_NAME];
  const instance = res[ATTR.SERVICE_INSTANCE_ID];
  return `${typeof service === 'string' ? service : ''}\u0000${typeof instance === 'string' ? instance : '\u0001'}`;
}

/** What of a resource travels with a wait record: its service name and instance id, where strings. */
export function waitResource(res: Attributes): WaitResource {
  const service = res[ATTR.SERVICE_NAME];
  const instance = res[ATTR.SERVICE_INSTANCE_ID];
  const r: WaitResource = {};
  if (typeof service === 'string') r[ATTR.SERVICE_NAME] = service;
  if (typeof instance === 'string') r[ATTR.SERVICE_INSTANCE_ID] = instance;
  return r;
}

/** The bytes of one wait-record message: UTF-8 JSON. */
export function encodeWaitRecordBatch(batch: WaitRecordBatch): Buffer {
  return Buffer.from(JSON.stringify(batch), 'utf8');
}

/** A wait-record message, decoded for the detector. */
export interface DecodedWaitRecords {
  /** The spans and log events, as the engine takes them. */
  batch: DecodedBatch;
  /** When the input was first observed, unix ms. */
  observedAtMs: number;
  /** Spans the decode stage read to make the message. */
  sourceSpans: number;
  /** Log events the decode stage read to make the message. */
  sourceLogEvents: number;
}

const HEX32 = /^[0-9a-f]{32}$/;
const HEX16 = /^[0-9a-f]{16}$/;

function fail(source: string, path: string, detail: string): never {
  throw new DecodeError(detail, { source, path });
}

function isNum(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0;
}

function attrsOf(v: unknown, source: string, path: string): Attributes {
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(source, path, 'attributes must be an object');
  return v as Attributes;
}

/**
 * Decodes one wait-record message into the records the engine takes. Checks what the engine relies on (ids,
 * times, resource indices, the version) and throws a DecodeError (`bad-input`) naming the first fault.
 * @param bytes the message value
 * @param source the input's name for error messages (e.g. `waitgraph.waits/0@42`)
 */
export function decodeWaitRecordBatch(bytes: Uint8Array, source = '<memory>'): DecodedWaitRecords {
  let m: Partial<WaitRecordBatch>;
  try {
    m = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (err) {
    fail(source, '$', `not JSON: ${(err as Error).message}`);
  }
  if (typeof m !== 'object' || m === null) fail(source, '$', 'not a wait-record batch');
  if (m.v !== WAIT_RECORD_VERSION) fail(source, 'v', `unknown wait-record version ${JSON.stringify(m.v)} (reads ${WAIT_RECORD_VERSION})`);
  if (!isNum(m.observedAtMs)) fail(source, 'observedAtMs', 'must be a unix time in ms');
  if (!Array.isArray(m.resources) || !Array.isArray(m.spans) || !Array.isArray(m.logEvents)) {
    fail(source, '$', 'resources, spans and logEvents must be arrays');
  }
  const resources: Attributes[] = m.resources.map((r, i) => attrsOf(r, source, `resources[${i}]`));
  const resourceAt = (i: unknown, path: string): Attributes => {
    const r = typeof i === 'number' ? resources[i] : undefined;
    return r ?? fail(source, path, `resource index ${JSON.stringify(i)} out of range`);
  };
  const spans: SpanRecord[] = new Array(m.spans.length);
  for (let i = 0; i < m.spans.length; i++) {
    const s = m.spans[i] as WaitRecordSpan;
    const path = `spans[${i}]`;
    if (typeof s !== 'object' || s === null) fail(source, path, 'not a span');
    if (typeof s.traceId !== 'string' || !HEX32.test(s.traceId)) fail(source, `${path}.traceId`, 'must be 32 lowercase hex digits');
    if (typeof s.spanId !== 'string' || !HEX16.test(s.spanId)) fail(source, `${path}.spanId`, 'must be 16 lowercase hex digits');
    if (s.parentSpanId !== undefined && (typeof s.parentSpanId !== 'string' || !HEX16.test(s.parentSpanId))) {
      fail(source, `${path}.parentSpanId`, 'must be 16 lowercase hex digits');
    }
    if (!isNum(s.start) || !isNum(s.end)) fail(source, path, 'start and end must be unix nanoseconds');
    const kind = Number.isInteger(s.kind) && s.kind >= 0 && s.kind <= 5 ? s.kind : 0;
    const events: SpanEventRecord[] = [];
    if (s.events !== undefined) {
      if (!Array.isArray(s.events)) fail(source, `${path}.events`, 'must be an array');
      for (let k = 0; k < s.events.length; k++) {
        const e = s.events[k];
        if (typeof e?.name !== 'string' || !isNum(e.time)) fail(source, `${path}.events[${k}]`, 'an event needs a name and a time');
        events.push(makeEvent(e.name, e.time, attrsOf(e.attributes, source, `${path}.events[${k}].attributes`)));
      }
    }
    spans[i] = makeSpan(
      s.traceId,
      s.spanId,
      s.parentSpanId,
      typeof s.name === 'string' ? s.name : '',
      kind as SpanRecord['kind'],
      s.start,
      s.end,
      attrsOf(s.attributes, source, `${path}.attributes`),
      resourceAt(s.resource, `${path}.resource`),
      events,
    );
  }
  const logEvents: LogEventRecord[] = new Array(m.logEvents.length);
  for (let i = 0; i < m.logEvents.length; i++) {
    const e = m.logEvents[i] as WaitRecordLogEvent;
    const path = `logEvents[${i}]`;
    if (typeof e !== 'object' || e === null) fail(source, path, 'not a log event');
    if (typeof e.traceId !== 'string' || !HEX32.test(e.traceId) || typeof e.spanId !== 'string' || !HEX16.test(e.spanId)) {
      fail(source, path, 'traceId and spanId must be lowercase hex (32 and 16 digits)');
    }
    if (typeof e.name !== 'string' || !isNum(e.time)) fail(source, path, 'a log event needs a name and a time');
    logEvents[i] = makeLogEvent(e.traceId, e.spanId, e.name, e.time, attrsOf(e.attributes, source, `${path}.attributes`), resourceAt(e.resource, `${path}.resource`));
  }
  return {
    batch: { spans, logEvents },
    observedAtMs: m.observedAtMs,
    sourceSpans: isNum(m.sourceSpans) ? m.sourceSpans : 0,
    sourceLogEvents: isNum(m.sourceLogEvents) ? m.sourceLogEvents : 0,
  };
}
