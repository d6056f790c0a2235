/**
 * OTLP JSON decoder: the OTLP/HTTP JSON encoding (`{"resourceSpans":[...]}`, `{"resourceLogs":[...]}`) and
 * the Collector file exporter's output (JSON Lines of those).
 *
 * Follows the OTLP JSON mapping and accepts the variants tools write: ids as hex (either case) or base64;
 * 64-bit integers as strings or numbers; `kind` as a number or a name (`SPAN_KIND_CLIENT`); camelCase or
 * snake_case field names; the pre-1.0 `instrumentationLibrarySpans`. AnyValues flatten as the protobuf
 * decoder does (kvlist to a JSON string, bytes to hex). A span the engine cannot use (bad ids, no start
 * time) is an error naming its path and number, never a silent drop.
 */
import type { AttrValue, Attributes, DecodedBatch, SpanEventRecord } from '../model/span.js';
import type { DecodeContext } from './context.js';
import { DEFAULT_SOURCE } from './decode-error.js';
import { base64ToHex, isZeroHex, normalizeId } from './hex.js';
import { isObj, ShapeProblem, type Obj } from './json-shape.js';
import { decodeJsonStrict } from './json-text.js';
import { EVENT_NAME_ATTR, isWaitEventName } from './log-events.js';
import { makeEvent, makeLogEvent, makeSpan, setAttr, toSpanKind } from './records.js';

type NestedValue = AttrValue | { [key: string]: NestedValue } | NestedValue[];

/**
 * Decodes OTLP JSON: one document (text or an already parsed object), or JSON Lines of documents.
 * @param input the JSON text, or the parsed value
 * @param source the input's name for error messages; default `<memory>`
 * @throws DecodeError on invalid JSON (with line:column), a document that is not OTLP, or an unusable span
 */
export function decodeOtlpJson(input: string | object, source: string = DEFAULT_SOURCE): DecodedBatch {
  return decodeJsonStrict(input, source, decodeOtlpJsonInto);
}

/** True if a parsed JSON value looks like an OTLP traces or logs document. */
export function isOtlpJson(doc: unknown): boolean {
  if (!isObj(doc)) return false;
  return field(doc, 'resourceSpans', 'resource_spans') !== undefined || field(doc, 'resourceLogs', 'resource_logs') !== undefined;
}

/** Decodes one parsed OTLP JSON document into `ctx`. `line` is its line in JSON Lines input. */
export function decodeOtlpJsonInto(ctx: DecodeContext, doc: unknown, line: number | undefined): void {
  if (!isOtlpJson(doc)) {
    ctx.fail('not an OTLP JSON document: expected an object with "resourceSpans" or "resourceLogs"', { line });
    return;
  }
  const o = doc as Obj;
  const rss = field(o, 'resourceSpans', 'resource_spans');
  if (rss !== undefined) {
    if (!Array.isArray(rss)) ctx.fail('"resourceSpans" is not an array', { line, path: 'resourceSpans' });
    else for (let ri = 0; ri < rss.length; ri++) readResourceGroup(ctx, rss[ri], line, ri, TRACE_NAMES, readSpan);
  }
  const rls = field(o, 'resourceLogs', 'resource_logs');
  if (rls !== undefined) {
    if (!Array.isArray(rls)) ctx.fail('"resourceLogs" is not an array', { line, path: 'resourceLogs' });
    else for (let ri = 0; ri < rls.length; ri++) readResourceGroup(ctx, rls[ri], line, ri, LOG_NAMES, readLogRecord);
  }
}

/** A field by its camelCase name (OTLP JSON) or its snake_case name (protobuf field name, some tools). */
function field(o: Obj, camel: string, snake: string): unknown {
  const v = o[camel];
  return v !== undefined ? v : o[snake];
}

function arrayField(o: Obj, camel: string, snake: string): unknown[] {
  const v = field(o, camel, snake);
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new ShapeProblem(`"${camel}" is not an array`);
  return v;
}

function readResource(o: Obj): Attributes {
  const res = o.resource;
  const attrs: Attributes = {};
  if (isObj(res)) readAttributes(res.attributes, attrs, undefined);
  return attrs;
}

/** Field names of one signal's nesting: resource groups, scope groups (current and pre-1.0 names), records. */
interface SignalNames {
  resources: string;
  scopes: [camel: string, snake: string];
  legacyScopes: [camel: string, snake: string];
  records: [camel: string, snake: string];
}

const TRACE_NAMES: SignalNames = {
  resources: 'resourceSpans',
  scopes: ['scopeSpans', 'scope_spans'],
  legacyScopes: ['instrumentationLibrarySpans', 'instrumentation_library_spans'],
  records: ['spans', 'spans'],
};
const LOG_NAMES: SignalNames = {
  resources: 'resourceLogs',
  scopes: ['scopeLogs', 'scope_logs'],
  legacyScopes: ['instrumentationLibraryLogs', 'instrumentation_library_logs'],
  records: ['logRecords', 'log_records'],
};

type RecordReader = (ctx: DecodeContext, rec: unknown, resource: Attributes, line: number | undefined, ri: number, si: number, idx: number) => void;

/** Reads one ResourceSpans/ResourceLogs: its resource, its scopes, and each record through `readRecord`. */
function readResourceGroup(ctx: DecodeContext, group: unknown, line: number | undefined, ri: number, names: SignalNames, readRecord: RecordReader): void {
  const path = `${names.resources}[${ri}]`;
  let resource: Attributes;
  let scopes: unknown[];
  try {
    if (!isObj(group)) throw new ShapeProblem('not an object');
    resource = readResource(group);
    const [camel, snake] = field(group, ...names.scopes) !== undefined ? names.scopes : names.legacyScopes;
    scopes = arrayField(group, camel, snake);
  } catch (err) {
    if (!(err instanceof ShapeProblem)) throw err;
    ctx.fail(err.message, { line, path });
    return;
  }
  for (let si = 0; si < scopes.length; si++) {
    const scope = scopes[si];
    let records: unknown[];
    try {
      if (!isObj(scope)) throw new ShapeProblem('not an object');
      records = arrayField(scope, ...names.records);
    } catch (err) {
      if (!(err instanceof ShapeProblem)) throw err;
      ctx.fail(err.message, { line, path: `${path}.${names.scopes[0]}[${si}]` });
      continue;
    }
    for (let idx = 0; idx < records.length; idx++) readRecord(ctx, records[idx], resource, line, ri, si, idx);
  }
}

function readSpan(ctx: DecodeContext, s: unknown, resource: Attributes, line: number | undefined, ri: number, si: number, pi: number): void {
  const index = ++ctx.spanCount;
  try {
    if (!isObj(s)) throw new ShapeProblem('not an object');
    const traceId = readId(field(s, 'traceId', 'trace_id'), 16, 'traceId');
    const spanId = readId(field(s, 'spanId', 'span_id'), 8, 'spanId');
    const parentSpanId = readParentId(field(s, 'parentSpanId', 'parent_span_id'));
    const start = readNanos(field(s, 'startTimeUnixNano', 'start_time_unix_nano'), 'startTimeUnixNano');
    if (!(start > 0)) throw new ShapeProblem('startTimeUnixNano is missing');
    const end = readNanos(field(s, 'endTimeUnixNano', 'end_time_unix_nano'), 'endTimeUnixNano');
    const name = typeof s.name === 'string' ? s.name : '';
    const attributes: Attributes = {};
    readAttributes(s.attributes, attributes, undefined);
    const rawEvents = arrayField(s, 'events', 'events');
    const events: SpanEventRecord[] = [];
    for (let ei = 0; ei < rawEvents.length; ei++) events.push(readEvent(rawEvents[ei], ei));
    ctx.spans.push(makeSpan(traceId, spanId, parentSpanId, name, toSpanKind(s.kind), start, end, attributes, resource, events));
  } catch (err) {
    if (!(err instanceof ShapeProblem)) throw err;
    ctx.fail(`span #${index}: ${err.message}`, { line, path: `resourceSpans[${ri}].scopeSpans[${si}].spans[${pi}]` });
  }
}

function readEvent(e: unknown, ei: number): SpanEventRecord {
  if (!isObj(e)) throw new ShapeProblem(`events[${ei}] is not an object`);
  const attributes: Attributes = {};
  readAttributes(e.attributes, attributes, undefined);
  const name = typeof e.name === 'string' ? e.name : '';
  return makeEvent(name, readNanos(field(e, 'timeUnixNano', 'time_unix_nano'), `events[${ei}].timeUnixNano`), attributes);
}

/** A required id: hex or base64 text of `bytes` bytes, not all zeros. */
function readId(v: unknown, bytes: number, what: string): string {
  if (v === undefined || v === null || v === '') throw new ShapeProblem(`${what} is missing`);
  const hex = typeof v === 'string' ? normalizeId(v, bytes) : undefined;
  if (hex === undefined) throw new ShapeProblem(`${what} ${JSON.stringify(v)} is not ${bytes * 2} hex digits (or base64 of ${bytes} bytes)`);
  if (isZeroHex(hex)) throw new ShapeProblem(`${what} is all zeros`);
  return hex;
}

/** An optional parent id: absent, empty or all zeros means a root span. */
function readParentId(v: unknown): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  const hex = typeof v === 'string' ? normalizeId(v, 8) : undefined;
  if (hex === undefined) throw new ShapeProblem(`parentSpanId ${JSON.stringify(v)} is not 16 hex digits (or base64 of 8 bytes)`);
  return isZeroHex(hex) ? undefined : hex;
}

/** Unix nanoseconds from a (u)int64 JSON value: a decimal string or a number. Absent is 0. */
function readNanos(v: unknown, what: string): number {
  if (v === undefined || v === null || v === '') return 0;
  if (typeof v === 'number') {
    if (v >= 0 && Number.isFinite(v)) return v;
  } else if (typeof v === 'string' && /^[0-9]+$/.test(v)) return Number(v);
  throw new ShapeProblem(`${what} ${JSON.stringify(v)} is not a count of nanoseconds`);
}

/**
 * Reads an OTLP JSON attribute list (`[{key, value: AnyValue}]`) into `into`. A key equal to `skipKey` is
 * left out and returned instead (the `event.name` of log records).
 */
function readAttributes(list: unknown, into: Attributes, skipKey: string | undefined): NestedValue | undefined {
  if (list === undefined || list === null) return undefined;
  if (!Array.isArray(list)) throw new ShapeProblem('attributes is not an array');
  let skipped: NestedValue | undefined;
  for (let i = 0; i < list.length; i++) {
    const kv = list[i];
    if (!isObj(kv) || typeof kv.key !== 'string') throw new ShapeProblem(`attributes[${i}] is not a {key, value} pair`);
    const value = readAnyValue(kv.value, false);
    if (kv.key === skipKey) skipped = value;
    else setAttr(into, kv.key, value as AttrValue);
  }
  return skipped;
}

/** Flattens an OTLP JSON AnyValue (see the module banner). An empty AnyValue is null. */
function readAnyValue(v: unknown, nested: boolean): NestedValue {
  if (v === undefined || v === null) return null;
  // Not OTLP, but some hand-written files put bare JSON values here: take them as they are.
  if (typeof v !== 'object') return v as AttrValue;
  if (Array.isArray(v)) throw new ShapeProblem('an attribute value is an array, expected an AnyValue object');
  const o = v as Obj;
  let x = field(o, 'stringValue', 'string_value');
  if (x !== undefined) return typeof x === 'string' ? x : String(x);
  x = field(o, 'intValue', 'int_value');
  if (x !== undefined) {
    const n = typeof x === 'number' ? x : typeof x === 'string' && /^-?[0-9]+$/.test(x) ? Number(x) : NaN;
    if (!Number.isFinite(n)) throw new ShapeProblem(`intValue ${JSON.stringify(x)} is not an integer`);
    return n;
  }
  x = field(o, 'doubleValue', 'double_value');
  if (x !== undefined) {
    // Proto3 JSON writes the non-finite doubles as strings.
    const n = typeof x === 'number' ? x : typeof x === 'string' ? Number(x) : NaN;
    if (Number.isNaN(n) && x !== 'NaN') throw new ShapeProblem(`doubleValue ${JSON.stringify(x)} is not a number`);
    return n;
  }
  x = field(o, 'boolValue', 'bool_value');
  if (x !== undefined) return x === true || x === 'true';
  x = field(o, 'arrayValue', 'array_value');
  if (x !== undefined) {
    const values = isObj(x) ? x.values : undefined;
    if (values === undefined || values === null) return [];
    if (!Array.isArray(values)) throw new ShapeProblem('arrayValue.values is not an array');
    const out: NestedValue[] = new Array(values.length);
    for (let i = 0; i < values.length; i++) out[i] = readAnyValue(values[i], nested);
    return out;
  }
  x = field(o, 'kvlistValue', 'kvlist_value');
  if (x !== undefined) {
    const values = isObj(x) ? x.values : undefined;
    const obj: { [key: string]: NestedValue } = {};
    if (values !== undefined && values !== null) {
      if (!Array.isArray(values)) throw new ShapeProblem('kvlistValue.values is not an array');
      for (let i = 0; i < values.length; i++) {
        const kv = values[i];
        if (!isObj(kv) || typeof kv.key !== 'string') throw new ShapeProblem(`kvlistValue.values[${i}] is not a {key, value} pair`);
        setAttr(obj as Attributes, kv.key, readAnyValue(kv.value, true) as AttrValue);
      }
    }
    return nested ? obj : JSON.stringify(obj);
  }
  x = field(o, 'bytesValue', 'bytes_value');
  if (x !== undefined) {
    if (typeof x !== 'string') throw new ShapeProblem('bytesValue is not a base64 string');
    return base64ToHex(x);
  }
  return null;
}

function readLogRecord(ctx: DecodeContext, rec: unknown, resource: Attributes, line: number | undefined, ri: number, si: number, li: number): void {
  const index = ++ctx.logCount;
  let name = '';
  try {
    if (!isObj(rec)) throw new ShapeProblem('not an object');
    const attributes: Attributes = {};
    const attrName = readAttributes(rec.attributes, attributes, EVENT_NAME_ATTR);
    const eventName = field(rec, 'eventName', 'event_name');
    name = typeof eventName === 'string' && eventName !== '' ? eventName : typeof attrName === 'string' ? attrName : '';
    if (name === '') return; // an ordinary log line, not an event
    const rawTrace = field(rec, 'traceId', 'trace_id');
    const rawSpan = field(rec, 'spanId', 'span_id');
    const noContext = (rawTrace === undefined || rawTrace === '') && (rawSpan === undefined || rawSpan === '');
    if (noContext) {
      // Events outside the wait vocabulary without a span are of no use to the detector, and not an error.
      if (!isWaitEventName(name)) return;
      throw new ShapeProblem('has no traceId/spanId: a wait event must name the span it belongs to');
    }
    const traceId = readId(rawTrace, 16, 'traceId');
    const spanId = readId(rawSpan, 8, 'spanId');
    let time = readNanos(field(rec, 'timeUnixNano', 'time_unix_nano'), 'timeUnixNano');
    if (!(time > 0)) time = readNanos(field(rec, 'observedTimeUnixNano', 'observed_time_unix_nano'), 'observedTimeUnixNano');
    if (!(time > 0)) throw new ShapeProblem('timeUnixNano is missing');
    ctx.logEvents.push(makeLogEvent(traceId, spanId, name, time, attributes, resource));
  } catch (err) {
    if (!(err instanceof ShapeProblem)) throw err;
    const what = name !== '' ? `log event '${name}' (log record #${index})` : `log record #${index}`;
    ctx.fail(`${what}: ${err.message}`, { line, path: `resourceLogs[${ri}].scopeLogs[${si}].logRecords[${li}]` });
  }
}
