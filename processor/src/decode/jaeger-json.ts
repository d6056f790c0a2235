/**
 * Jaeger JSON decoder: the Jaeger UI's "Download JSON" export and the query API's `/api/traces` responses,
 * both `{"data":[{traceID, spans, processes}]}` (a bare trace object is accepted too).
 *
 * Mapping to the normalized span: times are microseconds (×1000); the parent is the first CHILD_OF reference
 * in the same trace (FOLLOWS_FROM references are links: the referencing span is not waited for); the kind
 * comes from the `span.kind` tag (removed from the attributes, as OTLP keeps it out of them); an event's
 * name is its log's `event` field, else its `message` field (removed from its attributes); the resource is
 * the process's tags plus `service.name`. Jaeger cannot express an open span: one tagged
 * `span.partial = true` is a partial snapshot and gets end time 0, any other ends at start + duration.
 * Ids are hex; 64-bit trace ids and ids whose leading zeros were dropped are left-padded.
 */
import { ATTR } from '../../../schemas/index.js';
import type { AttrValue, Attributes, DecodedBatch, SpanEventRecord, SpanKind } from '../model/span.js';
import type { DecodeContext } from './context.js';
import { DEFAULT_SOURCE } from './decode-error.js';
import { base64ToHex, isZeroHex, normalizeId } from './hex.js';
import { isObj, ShapeProblem, type Obj } from './json-shape.js';
import { decodeJsonStrict } from './json-text.js';
import { makeEvent, makeSpan, setAttr, toSpanKind } from './records.js';


/** The Jaeger tag that holds the OpenTracing/OTel span kind. */
const SPAN_KIND_TAG = 'span.kind';
/** Jaeger log fields that hold an event's name: OTel's translator writes `event`, OpenTracing often `message`. */
const EVENT_NAME_FIELDS = ['event', 'message'] as const;

/**
 * Decodes a Jaeger JSON export or API response.
 * @param input the JSON text, or the parsed value
 * @param source the input's name for error messages; default `<memory>`
 * @throws DecodeError on invalid JSON (with line:column), a document that is not Jaeger JSON, or an unusable span
 */
export function decodeJaegerJson(input: string | object, source: string = DEFAULT_SOURCE): DecodedBatch {
  return decodeJsonStrict(input, source, decodeJaegerJsonInto);
}

/** True if a parsed JSON value looks like Jaeger JSON: `{data: [...]}` or one trace `{spans: [...], processes}`. */
export function isJaegerJson(doc: unknown): boolean {
  if (!isObj(doc)) return false;
  return Array.isArray(doc.data) || (Array.isArray(doc.spans) && (isObj(doc.processes) || typeof doc.traceID === 'string'));
}

/** Decodes one parsed Jaeger document into `ctx`. `line` is its line in JSON Lines input. */
export function decodeJaegerJsonInto(ctx: DecodeContext, doc: unknown, line: number | undefined): void {
  if (!isJaegerJson(doc)) {
    ctx.fail('not a Jaeger JSON document: expected an object with "data" (or a trace with "spans" and "processes")', { line });
    return;
  }
  const o = doc as Obj;
  if (Array.isArray(o.data)) {
    for (let ti = 0; ti < o.data.length; ti++) readTrace(ctx, o.data[ti], line, `data[${ti}]`);
  } else readTrace(ctx, o, line, '');
}

function readTrace(ctx: DecodeContext, t: unknown, line: number | undefined, path: string): void {
  const prefix = path === '' ? '' : `${path}.`;
  if (!isObj(t)) {
    ctx.fail('not a trace object', { line, path });
    return;
  }
  if (!Array.isArray(t.spans)) {
    ctx.fail('"spans" is not an array', { line, path: `${prefix}spans` });
    return;
  }
  const processes = isObj(t.processes) ? t.processes : {};
  // One resource object per process, shared by its spans.
  const resources = new Map<string, Attributes>();
  for (let si = 0; si < t.spans.length; si++) {
    const index = ++ctx.spanCount;
    try {
      readSpan(ctx, t.spans[si], t.traceID, processes, resources);
    } catch (err) {
      if (!(err instanceof ShapeProblem)) throw err;
      ctx.fail(`span #${index}: ${err.message}`, { line, path: `${prefix}spans[${si}]` });
    }
  }
}

function readSpan(ctx: DecodeContext, s: unknown, traceTraceId: unknown, processes: Obj, resources: Map<string, Attributes>): void {
  if (!isObj(s)) throw new ShapeProblem('not an object');
  const traceId = readId(s.traceID ?? traceTraceId, 16, 'traceID');
  const spanId = readId(s.spanID, 8, 'spanID');
  const parentSpanId = readParent(s, traceId);
  const startUs = readMicros(s.startTime, 'startTime');
  if (!(startUs > 0)) throw new ShapeProblem('startTime is missing');
  const durationUs = readMicros(s.duration, 'duration');

  const attributes: Attributes = {};
  let kind: SpanKind = 0;
  let partial = false;
  const tags = readKeyValues(s.tags, 'tags');
  for (let i = 0; i < tags.length; i += 2) {
    const key = tags[i] as string;
    const value = tags[i + 1] as AttrValue;
    if (key === SPAN_KIND_TAG) {
      kind = toSpanKind(value);
      continue;
    }
    if (key === ATTR.SPAN_PARTIAL && (value === true || value === 'true')) partial = true;
    setAttr(attributes, key, value);
  }

  const events: SpanEventRecord[] = [];
  const logs = s.logs;
  if (logs !== undefined && logs !== null) {
    if (!Array.isArray(logs)) throw new ShapeProblem('"logs" is not an array');
    for (let li = 0; li < logs.length; li++) events.push(readLog(logs[li], li));
  }

  const name = typeof s.operationName === 'string' ? s.operationName : '';
  const start = startUs * 1000;
  const end = partial ? 0 : (startUs + durationUs) * 1000;
  ctx.spans.push(makeSpan(traceId, spanId, parentSpanId, name, kind, start, end, attributes, resourceOf(s, processes, resources), events));
}

/** The first CHILD_OF reference within the trace; else the legacy `parentSpanID` field. */
function readParent(s: Obj, traceId: string): string | undefined {
  const refs = s.references;
  if (Array.isArray(refs)) {
    for (const ref of refs) {
      if (!isObj(ref) || ref.refType !== 'CHILD_OF') continue;
      const refTrace = ref.traceID === undefined ? traceId : normalizeId(String(ref.traceID), 16, true);
      if (refTrace !== traceId) continue;
      const id = readId(ref.spanID, 8, 'references[].spanID');
      return id;
    }
  }
  const legacy = s.parentSpanID;
  if (typeof legacy === 'string' && legacy !== '') {
    const id = readId(legacy, 8, 'parentSpanID');
    return id;
  }
  return undefined;
}

function readLog(l: unknown, li: number): SpanEventRecord {
  if (!isObj(l)) throw new ShapeProblem(`logs[${li}] is not an object`);
  const timeUs = readMicros(l.timestamp, `logs[${li}].timestamp`);
  const fields = readKeyValues(l.fields, `logs[${li}].fields`);
  let nameField = -1;
  for (const candidate of EVENT_NAME_FIELDS) {
    for (let i = 0; i < fields.length; i += 2) {
      if (fields[i] === candidate) {
        nameField = i;
        break;
      }
    }
    if (nameField >= 0) break;
  }
  const attributes: Attributes = {};
  for (let i = 0; i < fields.length; i += 2) if (i !== nameField) setAttr(attributes, fields[i] as string, fields[i + 1] as AttrValue);
  const nameValue = nameField >= 0 ? fields[nameField + 1] : '';
  return makeEvent(typeof nameValue === 'string' ? nameValue : String(nameValue), timeUs * 1000, attributes);
}

function resourceOf(s: Obj, processes: Obj, cache: Map<string, Attributes>): Attributes {
  // Some exports inline the process in each span instead of referencing the trace's process table.
  if (isObj(s.process)) return processResource(s.process);
  const pid = typeof s.processID === 'string' ? s.processID : '';
  let r = cache.get(pid);
  if (r === undefined) {
    const p = processes[pid];
    if (pid !== '' && !isObj(p)) throw new ShapeProblem(`processID ${JSON.stringify(pid)} is not in the trace's processes`);
    r = isObj(p) ? processResource(p) : {};
    cache.set(pid, r);
  }
  return r;
}

function processResource(p: Obj): Attributes {
  const r: Attributes = {};
  if (typeof p.serviceName === 'string') r[ATTR.SERVICE_NAME] = p.serviceName;
  const tags = readKeyValues(p.tags, 'process.tags');
  for (let i = 0; i < tags.length; i += 2) {
    if (tags[i] === ATTR.SERVICE_NAME && r[ATTR.SERVICE_NAME] !== undefined) continue;
    setAttr(r, tags[i] as string, tags[i + 1] as AttrValue);
  }
  return r;
}

/** Jaeger key-values as a flat [key, value, key, value, ...] list, values typed by their `type`. */
function readKeyValues(list: unknown, what: string): (string | AttrValue)[] {
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) throw new ShapeProblem(`"${what}" is not an array`);
  const out: (string | AttrValue)[] = [];
  for (let i = 0; i < list.length; i++) {
    const kv = list[i];
    if (!isObj(kv) || typeof kv.key !== 'string') throw new ShapeProblem(`${what}[${i}] is not a {key, type, value} object`);
    out.push(kv.key, tagValue(kv.type, kv.value, `${what}[${i}]`));
  }
  return out;
}

function tagValue(type: unknown, value: unknown, what: string): AttrValue {
  switch (typeof type === 'string' ? type.toLowerCase() : type) {
    case 'bool':
      return value === true || value === 'true';
    case 'int64':
    case 'float64': {
      const n = typeof value === 'number' ? value : Number(value);
      if (Number.isNaN(n)) throw new ShapeProblem(`${what}: ${JSON.stringify(value)} is not a number`);
      return n;
    }
    case 'binary':
      // Go's encoding/json writes []byte as base64.
      return typeof value === 'string' ? base64ToHex(value) : null;
    default:
      if (value === null || value === undefined) return null;
      if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value;
      return JSON.stringify(value);
  }
}

function readId(v: unknown, bytes: number, what: string): string {
  if (v === undefined || v === null || v === '') throw new ShapeProblem(`${what} is missing`);
  const hex = typeof v === 'string' ? normalizeId(v, bytes, true) : undefined;
  if (hex === undefined) throw new ShapeProblem(`${what} ${JSON.stringify(v)} is not hex of at most ${bytes * 2} digits`);
  if (isZeroHex(hex)) throw new ShapeProblem(`${what} is all zeros`);
  return hex;
}

/** Microseconds: a number or a decimal string. Absent is 0. */
function readMicros(v: unknown, what: string): number {
  if (v === undefined || v === null) return 0;
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^[0-9]+$/.test(v) ? Number(v) : NaN;
  if (!(n >= 0) || !Number.isFinite(n)) throw new ShapeProblem(`${what} ${JSON.stringify(v)} is not a count of microseconds`);
  return n;
}
