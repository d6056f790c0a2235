/**
 * The wait-record cut, fused with the OTLP protobuf decoder: from the bytes of an ExportTraceServiceRequest
 * straight to the spans detection reads, cut as `WaitRecordBuilder` cuts them, without first decoding the
 * spans the filter drops (about half of a typical workload) nor building wait records on the way.
 *
 * Three passes over one message:
 * 1. a scan of every span, as the protobuf decoder reads it (the same fields, the same checks, the same
 *    errors at the same offsets), keeping what the filter needs in typed arrays: where the ids are, kind,
 *    times, whether an event of the wait vocabulary is there, and the values of the span attributes the
 *    cut keeps; no id becomes a string here;
 * 2. the filter of `selectWaitSpans` on those facts, ancestors found through a table of span ids by their
 *    bytes;
 * 3. the kept spans made into records, exactly as `fromWaitRecords(builder.take())` would make them from
 *    the whole decoded spans (test/scale/wait-cut.test.ts holds the two to the same output).
 *
 * The builder's memory of the open spans it passed (`WaitRecordBuilder.rememberOpen`) is shared, so inputs
 * cut here and inputs that go through the builder (OTLP JSON) see one another's snapshots.
 */
import { ATTR, PROXY_COMPONENT } from '../../../schemas/index.js';
import { DecodeContext } from '../decode/context.js';
import { readEvent, readKeyValue, SpanFields, spanIdHex, spanName, traceIdHex, walkRequest, T_KV_KEY, T_SPAN_ATTRIBUTES, T_SPAN_EVENTS } from '../decode/otlp-proto.js';
import { ProtoReader } from '../decode/proto-reader.js';
import { makeEvent, makeSpan } from '../decode/records.js';
import type { AttrValue, Attributes, SpanEventRecord, SpanKind, SpanRecord } from '../model/span.js';
import { SpanKind as Kind } from '../model/span.js';
import {
  eventAttrs,
  NO_ATTRS,
  SPAN_ATTRS,
  spanIdKey,
  WAIT_EVENTS,
  waitResource,
  waitResourceKey,
  wireValue,
  type CutSpans,
  type WaitRecordBuilder,
  type WireAttrs,
} from './wait-records.js';

const SLOTS = SPAN_ATTRS.length;
const COMPONENT_SLOT = SPAN_ATTRS.indexOf(ATTR.COMPONENT);
/** The kept span attribute keys as UTF-8 bytes, to be matched without decoding every key. */
const SLOT_KEYS = SPAN_ATTRS.map((k) => Buffer.from(k, 'utf8'));
/** An attribute slot with no value read. */
const ABSENT = Symbol('absent');

/** What pass 1 keeps of the spans of one message: one entry per span, reused from message to message. */
class Scan {
  n = 0;
  cap = 0;
  /** Where the span's fields are: the trace id, the span id, the parent id (-1: none, or all zeros), the name's length prefix (-1: none). */
  tid = new Int32Array(0);
  sid = new Int32Array(0);
  pid = new Int32Array(0);
  name = new Int32Array(0);
  /** Where the span ends. */
  end = new Int32Array(0);
  kind = new Uint8Array(0);
  /** 1: it has an event of the wait vocabulary. */
  waits = new Uint8Array(0);
  /** What the filter makes of it: 0 dropped, 1 kept, 2 kept and its ancestors too. */
  keep = new Uint8Array(0);
  start = new Float64Array(0);
  stop = new Float64Array(0);
  events: (SpanEventRecord[] | undefined)[] = [];
  resource: Attributes[] = [];
  /** SLOTS values a span: its kept attributes, as the decoder reads them, or ABSENT. */
  attrs: (AttrValue | typeof ABSENT)[] = [];
  /** The span-id table of pass 2: open addressing, span index + 1, 0 empty. */
  table = new Int32Array(0);

  reset(): void {
    this.n = 0;
    // Let go of what the last message's spans held.
    this.events.length = 0;
    this.resource.length = 0;
  }

  /** Room for one more span; returns its index. */
  add(): number {
    const i = this.n;
    if (i === this.cap) this.grow(Math.max(256, this.cap * 2));
    this.n++;
    return i;
  }

  private grow(cap: number): void {
    const more = <T extends Int32Array | Uint8Array | Float64Array>(a: T, make: (n: number) => T): T => {
      const b = make(cap);
      b.set(a);
      return b;
    };
    this.tid = more(this.tid, (n) => new Int32Array(n));
    this.sid = more(this.sid, (n) => new Int32Array(n));
    this.pid = more(this.pid, (n) => new Int32Array(n));
    this.name = more(this.name, (n) => new Int32Array(n));
    this.end = more(this.end, (n) => new Int32Array(n));
    this.kind = more(this.kind, (n) => new Uint8Array(n));
    this.waits = more(this.waits, (n) => new Uint8Array(n));
    this.keep = more(this.keep, (n) => new Uint8Array(n));
    this.start = more(this.start, (n) => new Float64Array(n));
    this.stop = more(this.stop, (n) => new Float64Array(n));
    this.cap = cap;
  }
}

const scan = new Scan();

/** Key lengths that some kept attribute has: most keys are told apart by their length alone. */
const SLOT_LENGTHS = new Uint8Array(128);
for (const key of SLOT_KEYS) SLOT_LENGTHS[key.length] = 1;

/** The slot of the key of `n` bytes at `p`, or -1. */
function slotOfKey(b: Uint8Array, p: number, n: number): number {
  if (n >= 128 || SLOT_LENGTHS[n] === 0) return -1;
  for (let k = 0; k < SLOTS; k++) {
    const key = SLOT_KEYS[k];
    if (key.length !== n) continue;
    let i = 0;
    while (i < n && key[i] === b[p + i]) i++;
    if (i === n) return k;
  }
  return -1;
}

/** Which kept attribute the KeyValue at `r.pos` (ending at `end`) holds: its slot, or -1. Leaves `r.pos` where it was. */
function slotOf(r: ProtoReader, end: number): number {
  const at = r.pos;
  const b = r.bytes;
  // The common layout: the key first, shorter than 128 bytes.
  if (at + 2 <= end && b[at] === T_KV_KEY && b[at + 1] < 128) {
    const n = b[at + 1];
    if (at + 2 + n <= end) return slotOfKey(b, at + 2, n);
  }
  let slot = -1;
  // As the decoder's key test: the first key field names the KeyValue.
  while (r.pos < end) {
    const tag = r.tag(end);
    if (tag === T_KV_KEY) {
      const e = r.len(end);
      slot = slotOfKey(b, r.pos, e - r.pos);
      break;
    }
    r.skip(tag, end);
  }
  r.pos = at;
  return slot;
}

const fields = new SpanFields();

/** Pass 1 for one span (a `RecordReader` of the protobuf decoder's walk). */
function scanSpan(r: ProtoReader, end: number, ctx: DecodeContext, resource: Attributes, ri: number, si: number, pi: number): boolean {
  const at = r.pos;
  const index = ++ctx.spanCount;
  const f = fields;
  f.reset();
  let waits = 0;
  let events: SpanEventRecord[] | undefined;
  const s = scan;
  const attrs = s.attrs;
  const a0 = s.n * SLOTS;
  for (let k = 0; k < SLOTS; k++) attrs[a0 + k] = ABSENT;
  while (r.pos < end) {
    const tag = r.tag(end);
    if (f.read(r, tag, end)) continue;
    if (tag === T_SPAN_ATTRIBUTES) {
      const e = r.len(end);
      const slot = slotOf(r, e);
      if (slot >= 0) attrs[a0 + slot] = readKeyValue(r, e);
      r.pos = e;
    } else if (tag === T_SPAN_EVENTS) {
      const e = r.len(end);
      const ev = readEvent(r, e);
      (events ??= []).push(ev);
      if (WAIT_EVENTS.has(ev.name)) waits = 1;
      r.pos = e;
    } else r.skip(tag, end);
  }
  if (!f.usable(r, ctx, at, index, ri, si, pi)) return false;
  const i = s.add();
  s.tid[i] = f.tidPos;
  s.sid[i] = f.sidPos;
  s.pid[i] = f.parentAt(r.bytes);
  s.name[i] = f.namePos;
  s.end[i] = end;
  s.kind[i] = f.spanKind();
  s.waits[i] = waits;
  s.start[i] = f.start;
  s.stop[i] = f.stop;
  s.events[i] = events;
  s.resource[i] = resource;
  return false;
}

/** Whether the 16 bytes at `p` and at `q` are the same. */
function sameTrace(b: Uint8Array, p: number, q: number): boolean {
  for (let k = 0; k < 16; k++) if (b[p + k] !== b[q + k]) return false;
  return true;
}

/** Whether the 8 bytes at `p` and at `q` are the same. */
function sameSpan(b: Uint8Array, p: number, q: number): boolean {
  for (let k = 0; k < 8; k++) if (b[p + k] !== b[q + k]) return false;
  return true;
}

/** Pass 2: the filter of `selectWaitSpans`, on the facts of pass 1, into `scan.keep`. */
function select(b: Uint8Array, builder: WaitRecordBuilder, proxies: ReadonlySet<string> | undefined, ancestors: boolean): void {
  const s = scan;
  const n = s.n;
  const keep = s.keep;
  let chains = false;
  for (let i = 0; i < n; i++) {
    const waits = s.waits[i] === 1;
    const kind = s.kind[i];
    const ended = s.stop[i] !== 0;
    let kept =
      waits ||
      !ended ||
      kind === Kind.SERVER ||
      kind === Kind.CLIENT ||
      s.attrs[i * SLOTS + COMPONENT_SLOT] === PROXY_COMPONENT ||
      (proxies !== undefined && proxies.has(s.resource[i][ATTR.SERVICE_NAME] as string));
    if (!kept && builder.mayHavePassedOpen(spanIdKey(b, s.sid[i]))) kept = builder.passedOpenIds(traceIdHex(b, s.tid[i]), spanIdHex(b, s.sid[i]));
    keep[i] = !kept ? 0 : waits && ended && s.pid[i] >= 0 ? 2 : 1;
    if (keep[i] === 2) chains = true;
  }
  if (!chains || !ancestors) return;
  // The span ids of the message, by their bytes; a later span of the same id takes the place of an earlier.
  let size = 16;
  while (size < n * 2) size <<= 1;
  if (s.table.length < size) s.table = new Int32Array(size);
  const table = s.table;
  table.fill(0, 0, size);
  const mask = size - 1;
  const slotFor = (p: number): number => {
    let h = (spanIdKey(b, p) >>> 0) & mask;
    for (;;) {
      const e = table[h];
      if (e === 0 || sameSpan(b, s.sid[e - 1], p)) return h;
      h = (h + 1) & mask;
    }
  };
  for (let i = 0; i < n; i++) table[slotFor(s.sid[i])] = i + 1;
  const walked = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    if (keep[i] !== 2) continue;
    let cur = i;
    for (;;) {
      const p = s.pid[cur];
      const j = p < 0 ? -1 : table[slotFor(p)] - 1;
      if (j < 0 || walked[j] || !sameTrace(b, s.tid[j], s.tid[cur])) break;
      walked[j] = 1;
      if (!keep[j]) keep[j] = 1;
      cur = j;
    }
  }
}

/**
 * Decodes an OTLP `ExportTraceServiceRequest` (or `TracesData`) and cuts it as `builder` would cut the
 * decoded spans, by its filter; updates the builder's counts and its memory of open spans.
 * @param source the input's name for error messages
 * @throws DecodeError (`bad-input`) as `decodeOtlpTracesProto` throws it for the same bytes
 */
export function cutOtlpTracesProto(bytes: Uint8Array, source: string, builder: WaitRecordBuilder): CutSpans {
  const s = scan;
  s.reset();
  const r = new ProtoReader(bytes, source, 0);
  const ctx = new DecodeContext(source, null);
  walkRequest(r, ctx, scanSpan);
  const b = bytes;
  const n = s.n;
  const c = builder.counts;
  c.spansIn += n;
  // An open span, remembered before the filter looks: its ended version may be in the same input.
  for (let i = 0; i < n; i++) {
    const ev = s.events[i];
    if (ev !== undefined) c.eventsIn += ev.length;
    if (s.stop[i] === 0) builder.rememberOpen(traceIdHex(b, s.tid[i]), spanIdHex(b, s.sid[i]));
  }
  select(b, builder, builder.proxies, builder.keepAncestors);
  const spans: SpanRecord[] = [];
  // The resources of the kept spans as wait records carry them, one object for alike ones; the spans of
  // a message mostly share the last one.
  const resources = new Map<string, Attributes>();
  let lastResource: Attributes | undefined;
  let lastCut = NO_ATTRS;
  let waitEvents = 0;
  for (let i = 0; i < n; i++) {
    if (s.keep[i] === 0) continue;
    const res = s.resource[i];
    if (res !== lastResource) {
      lastResource = res;
      const key = waitResourceKey(res);
      let cut = resources.get(key);
      if (cut === undefined) resources.set(key, (cut = waitResource(res) as Attributes));
      lastCut = cut;
    }
    const traceId = traceIdHex(b, s.tid[i]);
    const spanId = spanIdHex(b, s.sid[i]);
    const parentSpanId = s.pid[i] >= 0 ? spanIdHex(b, s.pid[i]) : undefined;
    const stop = s.stop[i];
    if (stop !== 0 && builder.mayHavePassedOpen(spanIdKey(b, s.sid[i])) && builder.passedOpenIds(traceId, spanId)) builder.endOpen(spanId);
    const events: SpanEventRecord[] = [];
    const all = s.events[i];
    if (all !== undefined) {
      for (const e of all) {
        if (!WAIT_EVENTS.has(e.name)) continue;
        events.push(makeEvent(e.name, e.timeUnixNano, eventAttrs(e.attributes) ?? NO_ATTRS));
      }
    }
    let attributes: WireAttrs | undefined;
    for (let k = 0; k < SLOTS; k++) {
      const raw = s.attrs[i * SLOTS + k];
      if (raw === ABSENT) continue;
      const v = wireValue(raw);
      if (v !== undefined) (attributes ??= {})[SPAN_ATTRS[k]] = v;
    }
    spans.push(
      makeSpan(
        traceId,
        spanId,
        parentSpanId,
        spanName(r, s.name[i], s.end[i]),
        s.kind[i] as SpanKind,
        s.start[i],
        stop,
        (attributes as Attributes | undefined) ?? NO_ATTRS,
        lastCut,
        events,
      ),
    );
    waitEvents += events.length;
  }
  c.spansKept += spans.length;
  c.eventsKept += waitEvents;
  return { spans, spansIn: n, waitEvents };
}
