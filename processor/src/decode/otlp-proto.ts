/**
 * OTLP protobuf decoders: `ExportTraceServiceRequest` / `TracesData` and `ExportLogsServiceRequest` /
 * `LogsData` (each pair shares one wire layout: field 1 = repeated ResourceSpans / ResourceLogs), straight
 * from bytes to the normalized records, skipping what the detector never reads (scopes, links, status,
 * dropped counts, severity, bodies).
 *
 * Field numbers follow opentelemetry-proto v1 (trace.proto, logs.proto, common.proto). Tags are matched as
 * whole varints (`field << 3 | wire type`), so a known field with an unexpected wire type is skipped like an
 * unknown one. Traces and logs are told apart by wire shape: a Span's field 1 (trace_id) is
 * length-delimited, a LogRecord's field 1 (time_unix_nano) is fixed64.
 */
import type { AttrValue, Attributes, DecodedBatch, SpanEventRecord, SpanKind } from '../model/span.js';
import { DecodeContext } from './context.js';
import { DEFAULT_SOURCE } from './decode-error.js';
import { allZero as allZeroImport, bytesToHex as bytesToHexImport } from './hex.js';
import { ProtoReader } from './proto-reader.js';
import { makeEvent as makeEventImport, makeLogEvent, makeSpan as makeSpanImport, setAttr as setAttrImport } from './records.js';
import { EVENT_NAME_ATTR, isWaitEventName } from './log-events.js';

// The hot path binds its helpers once: run through tsx, an imported name is a getter call on the
// exporting module at every use.
const allZero = allZeroImport;
const bytesToHex = bytesToHexImport;
const makeEvent = makeEventImport;
const makeSpan = makeSpanImport;
const setAttr = setAttrImport;

// Tags: field number << 3 | wire type (0 varint, 1 fixed64, 2 length-delimited, 5 fixed32).
const T_F1_LEN = (1 << 3) | 2;
const T_F2_LEN = (2 << 3) | 2;

// Span
const T_SPAN_TRACE_ID = (1 << 3) | 2;
const T_SPAN_SPAN_ID = (2 << 3) | 2;
const T_SPAN_PARENT_SPAN_ID = (4 << 3) | 2;
const T_SPAN_NAME = (5 << 3) | 2;
const T_SPAN_KIND = (6 << 3) | 0;
const T_SPAN_START = (7 << 3) | 1;
const T_SPAN_END = (8 << 3) | 1;
export const T_SPAN_ATTRIBUTES = (9 << 3) | 2;
export const T_SPAN_EVENTS = (11 << 3) | 2;
// Span.Event
const T_EVENT_TIME = (1 << 3) | 1;
const T_EVENT_NAME = (2 << 3) | 2;
const T_EVENT_ATTRIBUTES = (3 << 3) | 2;
// LogRecord
const T_LOG_TIME = (1 << 3) | 1;
const T_LOG_ATTRIBUTES = (6 << 3) | 2;
const T_LOG_TRACE_ID = (9 << 3) | 2;
const T_LOG_SPAN_ID = (10 << 3) | 2;
const T_LOG_OBSERVED_TIME = (11 << 3) | 1;
const T_LOG_EVENT_NAME = (12 << 3) | 2;
// KeyValue
export const T_KV_KEY = (1 << 3) | 2;
export const T_KV_VALUE = (2 << 3) | 2;
// AnyValue
const T_ANY_STRING = (1 << 3) | 2;
const T_ANY_BOOL = (2 << 3) | 0;
const T_ANY_INT = (3 << 3) | 0;
const T_ANY_DOUBLE = (4 << 3) | 1;
const T_ANY_ARRAY = (5 << 3) | 2;
const T_ANY_KVLIST = (6 << 3) | 2;
const T_ANY_BYTES = (7 << 3) | 2;

/** Which OTLP signal a protobuf message carries. */
export type ProtoSignal = 'traces' | 'logs';

/** A value inside a kvlist: like AttrValue, plus nested objects (they are serialized to JSON at the top). */
type NestedValue = AttrValue | { [key: string]: NestedValue } | NestedValue[];

/** Options of the protobuf trace decoder. */
export interface ProtoDecodeOptions {
  /**
   * Span attributes to keep; the others are skipped without being read (a consumer that needs a few,
   * like `waitgraph run`'s input cut, saves most of the decoding). Default: all.
   */
  spanAttributes?: ReadonlySet<string>;
}

/**
 * Decodes an OTLP `ExportTraceServiceRequest` or `TracesData` message.
 * @param bytes the serialized message
 * @param source the input's name for error messages; default `<memory>`
 * @throws DecodeError on a truncated or malformed message (naming the byte offset) or an unusable span
 */
export function decodeOtlpTracesProto(bytes: Uint8Array, source: string = DEFAULT_SOURCE, options: ProtoDecodeOptions = {}): DecodedBatch {
  const ctx = new DecodeContext(source, null, options.spanAttributes);
  decodeProtoInto(ctx, bytes, 0, 'traces');
  return ctx.batch();
}

/**
 * Decodes an OTLP `ExportLogsServiceRequest` or `LogsData` message. Log records that carry an event name
 * become LogEventRecords; others are skipped.
 * @throws DecodeError on a truncated or malformed message, or an unusable wait event
 */
export function decodeOtlpLogsProto(bytes: Uint8Array, source: string = DEFAULT_SOURCE): DecodedBatch {
  const ctx = new DecodeContext(source, null);
  decodeProtoInto(ctx, bytes, 0, 'logs');
  return ctx.batch();
}

/**
 * Decodes an OTLP traces or logs message, telling which from its wire shape.
 * @throws DecodeError as the explicit decoders do
 */
export function decodeOtlpProto(bytes: Uint8Array, source: string = DEFAULT_SOURCE): DecodedBatch {
  const ctx = new DecodeContext(source, null);
  decodeProtoInto(ctx, bytes, 0, undefined);
  return ctx.batch();
}

/**
 * Decodes one message into `ctx`; `signal` undefined sniffs it. `origin` is the message's offset in the
 * whole input. A structural error ends this message: thrown in strict mode, recorded in lenient mode (the
 * records decoded before it are kept).
 */
export function decodeProtoInto(ctx: DecodeContext, bytes: Uint8Array, origin: number, signal: ProtoSignal | undefined): void {
  const r = new ProtoReader(bytes, ctx.source, origin);
  try {
    const sig = signal ?? sniffProtoSignal(r, ctx);
    r.pos = 0;
    if (sig === 'traces' && ctx.tracesProto !== undefined) return ctx.tracesProto(bytes, origin);
    walkRequest(r, ctx, sig === 'logs' ? readLogRecord : readSpan);
  } catch (err) {
    ctx.report(err);
  }
}

/**
 * Reads one record (a Span or a LogRecord) that ends at `end`; `ri`, `si`, `idx` are its indices in the
 * request (for error messages). Returns true to stop the walk.
 */
export type RecordReader = (r: ProtoReader, end: number, ctx: DecodeContext, resource: Attributes, ri: number, si: number, idx: number) => boolean;

/**
 * Walks a request: field 1 = repeated ResourceSpans/ResourceLogs, each with field 1 = Resource and
 * field 2 = repeated ScopeSpans/ScopeLogs, each with field 2 = repeated Span/LogRecord. Both signals share
 * this layout; `readRecord` does the rest.
 */
export function walkRequest(r: ProtoReader, ctx: DecodeContext, readRecord: RecordReader): void {
  const end = r.bytes.length;
  let ri = 0;
  while (r.pos < end) {
    const tag = r.tag(end);
    if (tag !== T_F1_LEN) {
      r.skip(tag, end);
      continue;
    }
    const rEnd = r.len(end);
    // Filled in place when the resource field comes, so records decoded before it (any field order is legal) see it too.
    const resource: Attributes = {};
    let si = 0;
    while (r.pos < rEnd) {
      const t2 = r.tag(rEnd);
      if (t2 === T_F1_LEN) {
        const e = r.len(rEnd);
        readResource(r, e, resource);
        r.pos = e;
      } else if (t2 === T_F2_LEN) {
        const sEnd = r.len(rEnd);
        let idx = 0;
        while (r.pos < sEnd) {
          const t3 = r.tag(sEnd);
          if (t3 === T_F2_LEN) {
            const e = r.len(sEnd);
            if (readRecord(r, e, ctx, resource, ri, si, idx++)) return;
            r.pos = e;
          } else r.skip(t3, sEnd);
        }
        si++;
      } else r.skip(t2, rEnd);
    }
    ri++;
  }
}

/**
 * Tells traces from logs by the wire types of the first record's fields. A message without any record
 * decodes to nothing either way and counts as traces.
 */
export function sniffProtoSignal(r: ProtoReader, ctx: DecodeContext): ProtoSignal {
  let found: ProtoSignal | undefined;
  r.pos = 0;
  walkRequest(r, ctx, (rr, end) => {
    while (rr.pos < end && found === undefined) {
      const t = rr.tag(end);
      const field = t >>> 3;
      const wire = t & 7;
      // Span: 1 trace_id (bytes), 2 span_id (bytes), 7 start time (fixed64), 11 events (bytes), 12 a count.
      // LogRecord: 1 time (fixed64), 2 severity (varint), 7 dropped count (varint), 11 observed time (fixed64), 12 event_name.
      if (field === 1 || field === 2) found = wire === 2 ? 'traces' : 'logs';
      else if (field === 7 || field === 11) found = wire === 1 ? (field === 7 ? 'traces' : 'logs') : field === 7 ? 'logs' : 'traces';
      else if (field === 12) found = wire === 2 ? 'logs' : 'traces';
      else rr.skip(t, end);
    }
    return found !== undefined;
  });
  return found ?? 'traces';
}

/** Resource: field 1 = repeated KeyValue attributes. */
function readResource(r: ProtoReader, end: number, resource: Attributes): void {
  while (r.pos < end) {
    const tag = r.tag(end);
    if (tag === T_F1_LEN) {
      const e = r.len(end);
      const v = readKeyValue(r, e);
      setAttr(resource, r.lastKey, v);
      r.pos = e;
    } else r.skip(tag, end);
  }
}

// The last trace id converted, by its bytes: the spans of a batch mostly share a handful of traces.
const lastTraceBytes = new Uint8Array(16);
let lastTraceHex = '';

export function traceIdHex(b: Uint8Array, p: number): string {
  if (lastTraceHex !== '') {
    let same = true;
    for (let i = 0; i < 16; i++) {
      if (b[p + i] !== lastTraceBytes[i]) {
        same = false;
        break;
      }
    }
    if (same) return lastTraceHex;
  }
  for (let i = 0; i < 16; i++) lastTraceBytes[i] = b[p + i];
  lastTraceHex = bytesToHex(b, p, p + 16);
  return lastTraceHex;
}

// Span ids converted lately, by a hash of their bytes: a span's id is its children's parent id, mostly in
// the same batch, so the two share one string (less to allocate, and to keep for every span the detector
// keeps). Direct-mapped; a collision replaces the entry.
const ID_SLOTS = 1024;
const idLo = new Int32Array(ID_SLOTS);
const idHi = new Int32Array(ID_SLOTS);
const idHex: string[] = new Array<string>(ID_SLOTS).fill('');

export function spanIdHex(b: Uint8Array, p: number): string {
  const lo = b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24);
  const hi = b[p + 4] | (b[p + 5] << 8) | (b[p + 6] << 16) | (b[p + 7] << 24);
  const slot = (Math.imul(lo ^ hi, 0x9e3779b1) >>> 22) & (ID_SLOTS - 1);
  const cached = idHex[slot];
  if (cached !== '' && idLo[slot] === lo && idHi[slot] === hi) return cached;
  const hex = bytesToHex(b, p, p + 8);
  idLo[slot] = lo;
  idHi[slot] = hi;
  idHex[slot] = hex;
  return hex;
}

/**
 * The fields of a Span that a reader of spans takes as `readSpan` does: where the ids and the name are, the
 * kind and the times. A reader hands each tag to `read` and handles the fields it declines (attributes,
 * events). One per reader, reused span after span (`reset`). `readSpan` itself keeps these in locals: on
 * the whole-span path that measured 5% faster than fields of an object.
 */
export class SpanFields {
  tidPos = -1;
  tidLen = 0;
  sidPos = -1;
  sidLen = 0;
  pidPos = -1;
  pidLen = 0;
  /** Where the name's length prefix is; -1: no name. */
  namePos = -1;
  kind = 0;
  start = 0;
  stop = 0;

  reset(): void {
    this.tidPos = -1;
    this.tidLen = 0;
    this.sidPos = -1;
    this.sidLen = 0;
    this.pidPos = -1;
    this.pidLen = 0;
    this.namePos = -1;
    this.kind = 0;
    this.start = 0;
    this.stop = 0;
  }

  /** Reads the field whose `tag` was just read, if it is one of these; false, reading nothing, if not. */
  read(r: ProtoReader, tag: number, end: number): boolean {
    switch (tag) {
      case T_SPAN_TRACE_ID:
        this.tidPos = r.bytesField(end);
        this.tidLen = r.pos - this.tidPos;
        return true;
      case T_SPAN_SPAN_ID:
        this.sidPos = r.bytesField(end);
        this.sidLen = r.pos - this.sidPos;
        return true;
      case T_SPAN_PARENT_SPAN_ID:
        this.pidPos = r.bytesField(end);
        this.pidLen = r.pos - this.pidPos;
        return true;
      case T_SPAN_NAME:
        this.namePos = r.pos;
        r.skip(tag, end);
        return true;
      case T_SPAN_KIND:
        this.kind = r.uint32(end);
        return true;
      case T_SPAN_START:
        this.start = r.fixed64(end);
        return true;
      case T_SPAN_END:
        this.stop = r.fixed64(end);
        return true;
      default:
        return false;
    }
  }

  /**
   * Whether the span read at `at` (the `index`th of its message, at `ri`/`si`/`pi` in the request) has what
   * every span needs: a trace id, a span id, a parent id of 8 bytes or none, a start time. If not, the fault
   * goes to `ctx.fail` (thrown in strict mode) and the span is to be skipped.
   */
  usable(r: ProtoReader, ctx: DecodeContext, at: number, index: number, ri: number, si: number, pi: number): boolean {
    return spanUsable(r, ctx, at, index, ri, si, pi, this.tidPos, this.tidLen, this.sidPos, this.sidLen, this.pidLen, this.start);
  }

  /** Where the parent id is: -1 for none, or all zeros (how some tools write "no parent"). */
  parentAt(b: Uint8Array): number {
    return this.pidLen === 8 && !allZero(b, this.pidPos, this.pidPos + 8) ? this.pidPos : -1;
  }

  /** The kind, an unknown one as UNSPECIFIED. */
  spanKind(): SpanKind {
    return (this.kind <= 5 ? this.kind : 0) as SpanKind;
  }
}

/** The name of a span whose name field's length prefix is at `namePos` (-1: none); moves `r.pos`. */
export function spanName(r: ProtoReader, namePos: number, end: number): string {
  if (namePos < 0) return '';
  r.pos = namePos;
  return r.value(end);
}

function readSpan(r: ProtoReader, end: number, ctx: DecodeContext, resource: Attributes, ri: number, si: number, pi: number): boolean {
  const at = r.pos;
  const index = ++ctx.spanCount;
  const b = r.bytes;
  let tidPos = -1;
  let tidLen = 0;
  let sidPos = -1;
  let sidLen = 0;
  let pidPos = -1;
  let pidLen = 0;
  let name = '';
  let kind = 0;
  let start = 0;
  let stop = 0;
  const attributes: Attributes = {};
  const events: SpanEventRecord[] = [];
  while (r.pos < end) {
    const tag = r.tag(end);
    switch (tag) {
      case T_SPAN_TRACE_ID: {
        tidPos = r.bytesField(end);
        tidLen = r.pos - tidPos;
        break;
      }
      case T_SPAN_SPAN_ID: {
        sidPos = r.bytesField(end);
        sidLen = r.pos - sidPos;
        break;
      }
      case T_SPAN_PARENT_SPAN_ID: {
        pidPos = r.bytesField(end);
        pidLen = r.pos - pidPos;
        break;
      }
      case T_SPAN_NAME:
        name = r.value(end);
        break;
      case T_SPAN_KIND:
        kind = r.uint32(end);
        break;
      case T_SPAN_START:
        start = r.fixed64(end);
        break;
      case T_SPAN_END:
        stop = r.fixed64(end);
        break;
      case T_SPAN_ATTRIBUTES: {
        const e = r.len(end);
        const keep = ctx.spanAttributes;
        if (keep !== undefined && !keepsKey(r, e, keep)) {
          r.pos = e;
          break;
        }
        const v = readKeyValue(r, e);
        setAttr(attributes, r.lastKey, v);
        r.pos = e;
        break;
      }
      case T_SPAN_EVENTS: {
        const e = r.len(end);
        events.push(readEvent(r, e));
        r.pos = e;
        break;
      }
      default:
        r.skip(tag, end);
    }
  }
  if (!spanUsable(r, ctx, at, index, ri, si, pi, tidPos, tidLen, sidPos, sidLen, pidLen, start)) return false;
  // An all-zero parent is how some tools write "no parent".
  const parentSpanId = pidLen === 8 && !allZero(b, pidPos, pidPos + 8) ? spanIdHex(b, pidPos) : undefined;
  ctx.spans.push(
    makeSpan(
      traceIdHex(b, tidPos),
      spanIdHex(b, sidPos),
      parentSpanId,
      name,
      (kind <= 5 ? kind : 0) as SpanKind,
      start,
      stop,
      attributes,
      resource,
      events,
    ),
  );
  return false;
}

/**
 * Whether a span read at `at` (the `index`th of its message, at `ri`/`si`/`pi` in the request) has what
 * every span needs: a trace id, a span id, a parent id of 8 bytes or none, a start time. If not, the fault
 * goes to `ctx.fail` (thrown in strict mode) and the span is to be skipped.
 */
function spanUsable(
  r: ProtoReader,
  ctx: DecodeContext,
  at: number,
  index: number,
  ri: number,
  si: number,
  pi: number,
  tidPos: number,
  tidLen: number,
  sidPos: number,
  sidLen: number,
  pidLen: number,
  start: number,
): boolean {
  const b = r.bytes;
  let problem = idProblem(b, tidPos, tidLen, 16, 'trace_id') ?? idProblem(b, sidPos, sidLen, 8, 'span_id');
  if (problem === undefined && pidLen !== 0 && pidLen !== 8) problem = `parent_span_id is ${pidLen} bytes, expected 8 or none`;
  if (problem === undefined && !(start > 0)) problem = 'start_time_unix_nano is missing';
  if (problem === undefined) return true;
  ctx.fail(`span #${index}: ${problem}`, { offset: r.origin + at, path: `resourceSpans[${ri}].scopeSpans[${si}].spans[${pi}]` });
  return false;
}

/** What is wrong with an id field of `want` bytes found at `pos` (-1: absent), or undefined. */
function idProblem(b: Uint8Array, pos: number, len: number, want: number, what: string): string | undefined {
  if (pos < 0) return `${what} is missing`;
  if (len !== want) return `${what} is ${len} bytes, expected ${want}`;
  if (allZero(b, pos, pos + want)) return `${what} is all zeros`;
  return undefined;
}

export function readEvent(r: ProtoReader, end: number): SpanEventRecord {
  let time = 0;
  let name = '';
  const attributes: Attributes = {};
  while (r.pos < end) {
    const tag = r.tag(end);
    if (tag === T_EVENT_ATTRIBUTES) {
      const e = r.len(end);
      const v = readKeyValue(r, e);
      setAttr(attributes, r.lastKey, v);
      r.pos = e;
    } else if (tag === T_EVENT_NAME) name = r.value(end);
    else if (tag === T_EVENT_TIME) time = r.fixed64(end);
    else r.skip(tag, end);
  }
  return makeEvent(name, time, attributes);
}

/**
 * Where the key of the KeyValue at `r.pos` (up to `end`) is: the length prefix of its last key field, as
 * `readKeyValue` takes it (a field that comes twice keeps its last value), or -1 when it has none. Walks
 * its fields, checking each tag and length as reading would (not the value's content); leaves `r.pos`
 * where it was. The decoder's choice of attributes (`keepsKey`) and the input cut's (scale/wait-cut.ts)
 * both go by it.
 */
export function lastKeyAt(r: ProtoReader, end: number): number {
  const start = r.pos;
  let keyAt = -1;
  while (r.pos < end) {
    const tag = r.tag(end);
    if (tag === T_KV_KEY) {
      keyAt = r.pos;
      r.pos = r.len(end);
    } else r.skip(tag, end);
  }
  r.pos = start;
  return keyAt;
}

/** Whether the KeyValue at `r.pos` (up to `end`) has a key in `keep` (`lastKeyAt`); leaves `r.pos` where it was. */
function keepsKey(r: ProtoReader, end: number, keep: ReadonlySet<string>): boolean {
  const keyAt = lastKeyAt(r, end);
  if (keyAt < 0) return true; // without a key: kept, for readKeyValue to read as it always has
  const start = r.pos;
  r.pos = keyAt;
  const found = keep.has(r.key(end));
  r.pos = start;
  return found;
}

/** Reads a KeyValue: returns the value and leaves the key in `r.lastKey`. */
export function readKeyValue(r: ProtoReader, end: number): AttrValue {
  let key = '';
  let value: AttrValue = null;
  while (r.pos < end) {
    const tag = r.tag(end);
    if (tag === T_KV_KEY) key = r.key(end);
    else if (tag === T_KV_VALUE) {
      const e = r.len(end);
      value = readAnyValue(r, e, false) as AttrValue;
      r.pos = e;
    } else r.skip(tag, end);
  }
  r.lastKey = key;
  return value;
}

/**
 * Walks an Event as `readEvent` reads it, with the same checks and errors at the same offsets, and makes
 * nothing: for a scan that decodes only the events it keeps. Returns where the length prefix of its name
 * is (the last name field, as `readEvent` takes the last), or -1 for none.
 */
export function skimEvent(r: ProtoReader, end: number): number {
  let namePos = -1;
  while (r.pos < end) {
    const tag = r.tag(end);
    if (tag === T_EVENT_ATTRIBUTES) {
      const e = r.len(end);
      skimKeyValue(r, e);
      r.pos = e;
    } else if (tag === T_EVENT_NAME) {
      namePos = r.pos;
      r.pos = r.len(end);
    } else if (tag === T_EVENT_TIME) r.fixed64(end);
    else r.skip(tag, end);
  }
  return namePos;
}

/** Walks a KeyValue as `readKeyValue` reads it, with the same checks and errors, and makes nothing. */
export function skimKeyValue(r: ProtoReader, end: number): void {
  while (r.pos < end) {
    const tag = r.tag(end);
    if (tag === T_KV_KEY) r.pos = r.len(end);
    else if (tag === T_KV_VALUE) {
      const e = r.len(end);
      skimAnyValue(r, e);
      r.pos = e;
    } else r.skip(tag, end);
  }
}

/** Walks an AnyValue as `readAnyValue` reads it, with the same checks and errors, and makes nothing. */
function skimAnyValue(r: ProtoReader, end: number): void {
  while (r.pos < end) {
    const tag = r.tag(end);
    switch (tag) {
      case T_ANY_STRING:
      case T_ANY_BYTES:
        r.pos = r.len(end);
        break;
      case T_ANY_BOOL:
      case T_ANY_INT:
        r.int64(end);
        break;
      case T_ANY_DOUBLE:
        r.double(end);
        break;
      case T_ANY_ARRAY:
      case T_ANY_KVLIST: {
        // Field 1 of each: an AnyValue of an array, a KeyValue of a kvlist.
        const skimOne = tag === T_ANY_ARRAY ? skimAnyValue : skimKeyValue;
        const e = r.len(end);
        while (r.pos < e) {
          const t = r.tag(e);
          if (t === T_F1_LEN) {
            const ve = r.len(e);
            skimOne(r, ve);
            r.pos = ve;
          } else r.skip(t, e);
        }
        break;
      }
      default:
        r.skip(tag, end);
    }
  }
}

/**
 * Reads an AnyValue, flattened: bytes become hex; a kvlist becomes a JSON string at attribute level and a
 * plain object inside another kvlist (so nesting serializes once). An empty AnyValue is null.
 */
function readAnyValue(r: ProtoReader, end: number, nested: boolean): NestedValue {
  let v: NestedValue = null;
  while (r.pos < end) {
    const tag = r.tag(end);
    switch (tag) {
      case T_ANY_STRING:
        v = r.value(end);
        break;
      case T_ANY_BOOL:
        v = r.bool(end);
        break;
      case T_ANY_INT:
        v = r.int64(end);
        break;
      case T_ANY_DOUBLE:
        v = r.double(end);
        break;
      case T_ANY_ARRAY: {
        const e = r.len(end);
        const arr: NestedValue[] = [];
        while (r.pos < e) {
          const t = r.tag(e);
          if (t === T_F1_LEN) {
            const ve = r.len(e);
            arr.push(readAnyValue(r, ve, nested));
            r.pos = ve;
          } else r.skip(t, e);
        }
        v = arr;
        break;
      }
      case T_ANY_KVLIST: {
        const e = r.len(end);
        const obj: { [key: string]: NestedValue } = {};
        while (r.pos < e) {
          const t = r.tag(e);
          if (t === T_F1_LEN) {
            const kvEnd = r.len(e);
            let key = '';
            let value: NestedValue = null;
            while (r.pos < kvEnd) {
              const t2 = r.tag(kvEnd);
              if (t2 === T_KV_KEY) key = r.key(kvEnd);
              else if (t2 === T_KV_VALUE) {
                const ve = r.len(kvEnd);
                value = readAnyValue(r, ve, true);
                r.pos = ve;
              } else r.skip(t2, kvEnd);
            }
            setAttr(obj as Attributes, key, value as AttrValue);
            r.pos = kvEnd;
          } else r.skip(t, e);
        }
        v = nested ? obj : JSON.stringify(obj);
        break;
      }
      case T_ANY_BYTES: {
        const e = r.len(end);
        v = bytesToHex(r.bytes, r.pos, e);
        r.pos = e;
        break;
      }
      default:
        r.skip(tag, end);
    }
  }
  return v;
}

function readLogRecord(r: ProtoReader, end: number, ctx: DecodeContext, resource: Attributes, ri: number, si: number, li: number): boolean {
  const at = r.pos;
  ++ctx.logCount;
  const b = r.bytes;
  let time = 0;
  let observed = 0;
  let eventName = '';
  let attrName: AttrValue = null;
  let tidPos = -1;
  let tidLen = 0;
  let sidPos = -1;
  let sidLen = 0;
  const attributes: Attributes = {};
  while (r.pos < end) {
    const tag = r.tag(end);
    switch (tag) {
      case T_LOG_TIME:
        time = r.fixed64(end);
        break;
      case T_LOG_OBSERVED_TIME:
        observed = r.fixed64(end);
        break;
      case T_LOG_EVENT_NAME:
        eventName = r.string(end);
        break;
      case T_LOG_ATTRIBUTES: {
        const e = r.len(end);
        const v = readKeyValue(r, e);
        // event.name is the record's name, not one of the event's attributes.
        if (r.lastKey === EVENT_NAME_ATTR) attrName = v;
        else setAttr(attributes, r.lastKey, v);
        r.pos = e;
        break;
      }
      case T_LOG_TRACE_ID: {
        tidPos = r.bytesField(end);
        tidLen = r.pos - tidPos;
        break;
      }
      case T_LOG_SPAN_ID: {
        sidPos = r.bytesField(end);
        sidLen = r.pos - sidPos;
        break;
      }
      default:
        r.skip(tag, end);
    }
  }
  const name = eventName !== '' ? eventName : typeof attrName === 'string' ? attrName : '';
  if (name === '') return false; // an ordinary log line, not an event
  const noContext = tidLen === 0 && sidLen === 0;
  // Events outside the wait vocabulary without a span are of no use to the detector, and not an error.
  if (noContext && !isWaitEventName(name)) return false;
  let problem = noContext
    ? 'has no trace_id/span_id: a wait event must name the span it belongs to'
    : (idProblem(b, tidPos, tidLen, 16, 'trace_id') ?? idProblem(b, sidPos, sidLen, 8, 'span_id'));
  if (problem === undefined && !(time > 0) && !(observed > 0)) problem = 'time_unix_nano is missing';
  if (problem !== undefined) {
    ctx.fail(`log event '${name}' (log record #${ctx.logCount}): ${problem}`, {
      offset: r.origin + at,
      path: `resourceLogs[${ri}].scopeLogs[${si}].logRecords[${li}]`,
    });
    return false;
  }
  ctx.logEvents.push(
    makeLogEvent(traceIdHex(b, tidPos), bytesToHex(b, sidPos, sidPos + 8), name, time > 0 ? time : observed, attributes, resource),
  );
  return false;
}
