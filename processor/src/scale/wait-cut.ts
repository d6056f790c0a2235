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
 * The builder's memory of the open spans it passed (`WaitRecordBuilder.open`) is shared, so inputs
 * cut here and inputs that go through the builder (OTLP JSON) see one another's snapshots.
 *
 * `WholeInputCut` is the same cut for `waitgraph analyze`, made exact: pass 2 runs once the whole input has
 * been scanned, and follows what one message needs into the others.
 */
import { ATTR, PROXY_COMPONENT } from '../../../schemas/index.js';
import { DecodeContext } from '../decode/context.js';
import { decodeProtoInto, lastKeyAt, readEvent, readKeyValue, skimEvent, skimKeyValue, SpanFields, spanIdHex, spanName, traceIdHex, walkRequest, T_KV_KEY, T_KV_VALUE, T_SPAN_ATTRIBUTES, T_SPAN_EVENTS } from '../decode/otlp-proto.js';
import { ProtoReader } from '../decode/proto-reader.js';
import type { DecodeError } from '../decode/decode-error.js';
import { makeEvent, makeLogEvent, makeSpan } from '../decode/records.js';
import { decodeBufferInto } from '../decode/sniff.js';
import type { Attributes, DecodedBatch, LogEventRecord, SpanEventRecord, SpanKind, SpanRecord } from '../model/span.js';
import {
  eventAttrs,
  hasWaitEvent,
  NO_ATTRS,
  SPAN_ATTRS,
  spanAttrs,
  spanIdKey,
  spanIdKeyOfHex,
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
const RESEND_SLOT = SPAN_ATTRS.indexOf(ATTR.HTTP_RESEND_COUNT);
/** The kept span attribute keys as UTF-8 bytes, to be matched without decoding every key. */
const SLOT_KEYS = SPAN_ATTRS.map((k) => Buffer.from(k, 'utf8'));
/**
 * The wait vocabulary's event names as UTF-8 bytes, to tell a wait event by its name's bytes without
 * decoding it. They are ASCII, so equal bytes and equal decoded names are the same test: bytes that are
 * not UTF-8 decode to U+FFFD, never to an ASCII name.
 */
const WAIT_NAMES = [...WAIT_EVENTS].map((k) => Buffer.from(k, 'utf8'));
for (const name of WAIT_NAMES) if (name.some((c) => c >= 0x80)) throw new Error(`wait-cut: the event name ${name.toString()} is not ASCII`);
const WAIT_NAME_LENGTHS = new Uint8Array(128);
for (const name of WAIT_NAMES) if (name.length < 128) WAIT_NAME_LENGTHS[name.length] = 1;

/** What pass 1 keeps of the spans of one message: one entry per span. The run path reuses one from message to message. */
class Scan {
  n = 0;
  cap = 0;
  /** Where the span's fields are: the trace id, the span id, the parent id (-1: none, or all zeros), the name's length prefix (-1: none). */
  tid = new Int32Array(0);
  sid = new Int32Array(0);
  pid = new Int32Array(0);
  name = new Int32Array(0);
  /** Where the span's content begins, and where it ends. */
  at = new Int32Array(0);
  end = new Int32Array(0);
  kind = new Uint8Array(0);
  /** 1: it has an event of the wait vocabulary. */
  waits = new Uint8Array(0);
  /** What the filter makes of it: 0 dropped, 1 kept, 2 kept and its ancestors too. */
  keep = new Uint8Array(0);
  start = new Float64Array(0);
  stop = new Float64Array(0);
  /** Events of each kind: all of them, and of the wait vocabulary. */
  eventCount = new Int32Array(0);
  waitCount = new Int32Array(0);
  /** The span's first wait event in `waitAt`/`waitEnd`. */
  waitFirst = new Int32Array(0);
  /** Where the wait events of all spans are: from the start of each one's content to its end; the first `waitN` in use. */
  waitAt = new Int32Array(0);
  waitEnd = new Int32Array(0);
  waitN = 0;
  resource: Attributes[] = [];
  /**
   * SLOTS a span: where the KeyValue of each kept attribute is, from the start of its content (-1: none)
   * to its end. The scan has checked it as the decoder reads it; pass 3 reads the values of kept spans.
   */
  kvAt = new Int32Array(0);
  kvEnd = new Int32Array(0);
  /** The span-id table of pass 2: open addressing, span index + 1, 0 empty; its size less one. */
  table = new Int32Array(0);
  tableMask = 0;
  /** 1: an ancestor walk went through it. */
  walked = new Uint8Array(0);

  /** With room for `cap` spans to begin with. */
  constructor(cap = 0) {
    if (cap > 0) this.grow(cap);
  }

  reset(): void {
    this.n = 0;
    this.waitN = 0;
    // Let go of what the last message's spans held.
    this.resource.length = 0;
  }

  /** Room for one more span, at index `n`. */
  room(): void {
    if (this.n === this.cap) this.grow(Math.max(256, this.cap * 2));
  }

  /** Takes the span at index `n` (`room` first); returns its index. */
  add(): number {
    return this.n++;
  }

  /** Notes a wait event of the span at `n`, its content from `at` to `end`. */
  addWait(at: number, end: number): void {
    const k = this.waitN++;
    if (k === this.waitAt.length) {
      const size = Math.max(64, k * 2);
      const at2 = new Int32Array(size);
      at2.set(this.waitAt);
      const end2 = new Int32Array(size);
      end2.set(this.waitEnd);
      this.waitAt = at2;
      this.waitEnd = end2;
    }
    this.waitAt[k] = at;
    this.waitEnd[k] = end;
  }

  /** Lets go of the room past its spans, where that is most of it (a scan kept for later). */
  trim(): void {
    if (this.cap > 2 * this.n) this.grow(this.n);
    if (this.waitAt.length > 2 * this.waitN) {
      this.waitAt = this.waitAt.slice(0, this.waitN);
      this.waitEnd = this.waitEnd.slice(0, this.waitN);
    }
  }

  private grow(cap: number): void {
    const more = <T extends Int32Array | Uint8Array | Float64Array>(a: T, make: (n: number) => T, per = 1): T => {
      const b = make(cap * per);
      b.set(a.subarray(0, cap * per));
      return b;
    };
    this.tid = more(this.tid, (n) => new Int32Array(n));
    this.sid = more(this.sid, (n) => new Int32Array(n));
    this.pid = more(this.pid, (n) => new Int32Array(n));
    this.name = more(this.name, (n) => new Int32Array(n));
    this.at = more(this.at, (n) => new Int32Array(n));
    this.end = more(this.end, (n) => new Int32Array(n));
    this.kind = more(this.kind, (n) => new Uint8Array(n));
    this.waits = more(this.waits, (n) => new Uint8Array(n));
    this.keep = more(this.keep, (n) => new Uint8Array(n));
    this.walked = more(this.walked, (n) => new Uint8Array(n));
    this.start = more(this.start, (n) => new Float64Array(n));
    this.stop = more(this.stop, (n) => new Float64Array(n));
    this.eventCount = more(this.eventCount, (n) => new Int32Array(n));
    this.waitCount = more(this.waitCount, (n) => new Int32Array(n));
    this.waitFirst = more(this.waitFirst, (n) => new Int32Array(n));
    this.kvAt = more(this.kvAt, (n) => new Int32Array(n), SLOTS);
    this.kvEnd = more(this.kvEnd, (n) => new Int32Array(n), SLOTS);
    this.cap = cap;
  }
}

/** The scan of the run path, reused. */
const scan = new Scan();
/** The scan pass 1 fills now. */
let into = scan;

/** Key lengths that some kept attribute has: most keys are told apart by their length alone. */
const SLOT_LENGTHS = new Uint8Array(128);
for (const key of SLOT_KEYS) SLOT_LENGTHS[key.length] = 1;
/**
 * Key lengths and first bytes that some kept attribute has, at `length << 8 | first byte`: the scan's fast
 * path tells apart by these two most keys of a kept key's length (`db.system` from `thread.id`).
 */
const SLOT_STARTS = new Uint8Array(128 << 8);
for (const key of SLOT_KEYS) if (key.length > 0 && key.length < 128) SLOT_STARTS[(key.length << 8) | key[0]] = 1;

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

/** `slotOf` of a KeyValue without a key: the decoder reads it whole (`keepsKey`), and so must the scan. */
const NO_KEY = -2;

/**
 * Which kept attribute the KeyValue at `r.pos` (ending at `end`) holds: its slot, -1 for another key, or
 * `NO_KEY`. Leaves `r.pos` where it was.
 */
function slotOf(r: ProtoReader, end: number): number {
  const at = r.pos;
  const b = r.bytes;
  // The common layout: the key first, shorter than 128 bytes, then nothing or one value shorter than 128
  // bytes that ends the KeyValue: no second key.
  if (at + 2 <= end && b[at] === T_KV_KEY && b[at + 1] < 128) {
    const n = b[at + 1];
    if (onlyValueAfter(b, at + 2 + n, end)) return slotOfKey(b, at + 2, n);
  }
  // As the decoder's choice of attributes: the last key field names the KeyValue (`lastKeyAt`).
  const keyAt = lastKeyAt(r, end);
  if (keyAt < 0) return NO_KEY;
  r.pos = keyAt;
  const e = r.len(end);
  const slot = slotOfKey(b, r.pos, e - r.pos);
  r.pos = at;
  return slot;
}

/** Whether a KeyValue's bytes from `q` to `end`, after its key, are nothing or one value field shorter than 128 bytes. */
function onlyValueAfter(b: Uint8Array, q: number, end: number): boolean {
  return q === end || (q + 2 <= end && b[q] === T_KV_VALUE && b[q + 1] < 128 && q + 2 + b[q + 1] === end);
}

/**
 * Whether the string field whose length prefix is at `p` (checked by the scan) holds a name of the wait
 * vocabulary, by its bytes.
 */
function waitNameAt(b: Uint8Array, p: number): boolean {
  // The length prefix, as a varint: the common one-byte form, or any other the decoder takes.
  let n = 0;
  let c = 0;
  let scale = 1;
  do {
    c = b[p++];
    n += (c & 0x7f) * scale;
    scale *= 128;
  } while (c >= 0x80);
  if (n >= 128 || WAIT_NAME_LENGTHS[n] === 0) return false;
  for (let k = 0; k < WAIT_NAMES.length; k++) {
    const name = WAIT_NAMES[k];
    if (name.length !== n) continue;
    let i = 0;
    while (i < n && name[i] === b[p + i]) i++;
    if (i === n) return true;
  }
  return false;
}

const fields = new SpanFields();

/** Pass 1 for one span (a `RecordReader` of the protobuf decoder's walk). */
function scanSpan(r: ProtoReader, end: number, ctx: DecodeContext, resource: Attributes, ri: number, si: number, pi: number): boolean {
  const at = r.pos;
  const index = ++ctx.spanCount;
  const f = fields;
  f.reset();
  const s = into;
  s.room();
  const kvAt = s.kvAt;
  const kvEnd = s.kvEnd;
  const a0 = s.n * SLOTS;
  for (let k = 0; k < SLOTS; k++) kvAt[a0 + k] = -1;
  const w0 = s.waitN;
  let eventCount = 0;
  // Every field is checked as the decoder reads it, for its errors; only where things are is kept.
  const b = r.bytes;
  while (r.pos < end) {
    // Most fields are attributes under keys it does not keep: one byte of tag, one of length, the key
    // first, of a length and a first byte no kept key has together, then the value and nothing else (no
    // second key). The decoder skips such a KeyValue by its length, and so does this, without a call.
    const p = r.pos;
    if (b[p] === T_SPAN_ATTRIBUTES && p + 4 <= end) {
      const n = b[p + 1];
      const e = p + 2 + n;
      const k = b[p + 3];
      if (n < 128 && e <= end && n >= 2 && b[p + 2] === T_KV_KEY && k < 128 && (k === 0 || SLOT_STARTS[(k << 8) | b[p + 4]] === 0) && onlyValueAfter(b, p + 4 + k, e)) {
        r.pos = e;
        continue;
      }
    }
    const tag = r.tag(end);
    if (f.read(r, tag, end)) continue;
    if (tag === T_SPAN_ATTRIBUTES) {
      const e = r.len(end);
      const slot = slotOf(r, e);
      if (slot >= 0) {
        kvAt[a0 + slot] = r.pos;
        kvEnd[a0 + slot] = e;
        skimKeyValue(r, e);
      } else if (slot === NO_KEY) skimKeyValue(r, e); // its value is under no kept key
      r.pos = e;
    } else if (tag === T_SPAN_EVENTS) {
      const e = r.len(end);
      const p = r.pos;
      const namePos = skimEvent(r, e);
      eventCount++;
      if (namePos >= 0 && waitNameAt(r.bytes, namePos)) s.addWait(p, e);
      r.pos = e;
    } else r.skip(tag, end);
  }
  if (!f.usable(r, ctx, at, index, ri, si, pi)) {
    s.waitN = w0;
    return false;
  }
  const i = s.add();
  s.tid[i] = f.tidPos;
  s.sid[i] = f.sidPos;
  s.pid[i] = f.parentAt(r.bytes);
  s.name[i] = f.namePos;
  s.at[i] = at;
  s.end[i] = end;
  s.kind[i] = f.spanKind();
  s.waits[i] = s.waitN > w0 ? 1 : 0;
  s.start[i] = f.start;
  s.stop[i] = f.stop;
  s.eventCount[i] = eventCount;
  s.waitFirst[i] = w0;
  s.waitCount[i] = s.waitN - w0;
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

/**
 * Pass 2, first half: what the filter of `selectWaitSpans` keeps of each span, into `s.keep` (1 kept, 2 kept
 * and its ancestors too). `remembered` says what the memory of earlier messages makes of a span: 1 kept (a
 * version of it was kept open), 2 kept with its ancestors (an earlier walk looked for it), or 0; it is asked
 * of a span the filter drops by its own facts for the first, of every span for the second. Returns whether
 * any span keeps its ancestors.
 */
function classify(s: Scan, r: ProtoReader, proxies: ReadonlySet<string> | undefined, remembered: (i: number, keptByFacts: boolean) => number): boolean {
  const n = s.n;
  const keep = s.keep;
  let chains = false;
  for (let i = 0; i < n; i++) {
    const waits = s.waits[i] === 1;
    const ended = s.stop[i] !== 0;
    const kept =
      waits ||
      !ended ||
      s.kvAt[i * SLOTS + RESEND_SLOT] >= 0 ||
      isProxyComponent(s, r, i) ||
      (proxies !== undefined && proxies.has(s.resource[i][ATTR.SERVICE_NAME] as string));
    let k = kept ? (waits && ended && s.pid[i] >= 0 ? 2 : 1) : 0;
    const m = remembered(i, kept);
    if (m === 2) k = s.pid[i] >= 0 ? 2 : 1;
    else if (m === 1 && k === 0) k = 1;
    keep[i] = k;
    if (k === 2) chains = true;
  }
  return chains;
}

/** Whether the span's component attribute says it is a proxy's. */
function isProxyComponent(s: Scan, r: ProtoReader, i: number): boolean {
  const at = s.kvAt[i * SLOTS + COMPONENT_SLOT];
  if (at < 0) return false;
  const pos = r.pos;
  r.pos = at;
  const v = readKeyValue(r, s.kvEnd[i * SLOTS + COMPONENT_SLOT]);
  r.pos = pos;
  return v === PROXY_COMPONENT;
}

/** Fills `s.table`: the span ids of the message, by their bytes; a later span of an id takes the place of an earlier. */
function indexIds(s: Scan, b: Uint8Array): void {
  const n = s.n;
  let size = 16;
  while (size < n * 2) size <<= 1;
  if (s.table.length < size) s.table = new Int32Array(size);
  s.tableMask = size - 1;
  s.table.fill(0, 0, size);
  for (let i = 0; i < n; i++) s.table[slotFor(s, b, s.sid[i])] = i + 1;
}

/** The slot of `s.table` of the span id at `p`: where it is, or the empty slot where it would go. */
function slotFor(s: Scan, b: Uint8Array, p: number): number {
  const table = s.table;
  const mask = s.tableMask;
  let h = (spanIdKey(b, p) >>> 0) & mask;
  for (;;) {
    const e = table[h];
    if (e === 0 || sameSpan(b, s.sid[e - 1], p)) return h;
    h = (h + 1) & mask;
  }
}

/**
 * Pass 2, second half: from span `i` up its ancestors in the message (`indexIds` first), each kept; stops
 * at one walked before (`s.walked`). Returns the last span reached when its parent is not in the message
 * (nor the message's span of that id of its trace), else -1.
 */
function walkUp(s: Scan, b: Uint8Array, i: number): number {
  let cur = i;
  for (;;) {
    const p = s.pid[cur];
    if (p < 0) return -1;
    const j = s.table[slotFor(s, b, p)] - 1;
    // Not in the message; or the span there of that id is of another trace (ids may repeat across traces).
    if (j < 0 || !sameTrace(b, s.tid[j], s.tid[cur])) return cur;
    if (s.walked[j]) return -1;
    s.walked[j] = 1;
    if (!s.keep[j]) s.keep[j] = 1;
    cur = j;
  }
}

/**
 * Pass 2 of the run path: the filter of `selectWaitSpans`, on the facts of pass 1, into `s.keep`, with the
 * builder's memory of the open spans it passed and of the ancestors its walks looked for; a walk that leaves
 * the message adds to the latter.
 */
function select(s: Scan, r: ProtoReader, builder: WaitRecordBuilder): void {
  const b = r.bytes;
  const chains = classify(s, r, builder.proxies, (i, keptByFacts) => {
    const key = spanIdKey(b, s.sid[i]);
    if (builder.wanted.mayHave(key) && builder.wanted.has(traceIdHex(b, s.tid[i]), spanIdHex(b, s.sid[i]))) return 2;
    if (!keptByFacts && builder.open.mayHave(key) && builder.open.has(traceIdHex(b, s.tid[i]), spanIdHex(b, s.sid[i]))) return 1;
    return 0;
  });
  if (!chains || !builder.keepAncestors) return;
  indexIds(s, b);
  s.walked.fill(0, 0, s.n);
  for (let i = 0; i < s.n; i++) {
    if (s.keep[i] !== 2) continue;
    const end = walkUp(s, b, i);
    if (end >= 0) builder.wanted.add(traceIdHex(b, s.tid[end]), spanIdHex(b, s.pid[end]));
  }
}

/** Pass 1 of one message into `s`: errors go to `ctx` (thrown in strict mode, else collected, the spans before kept). */
function scanInto(s: Scan, bytes: Uint8Array, ctx: DecodeContext, origin: number): ProtoReader {
  s.reset();
  const r = new ProtoReader(bytes, ctx.source, origin);
  into = s;
  try {
    walkRequest(r, ctx, scanSpan);
  } catch (err) {
    ctx.report(err);
  } finally {
    into = scan;
  }
  return r;
}

/**
 * Pass 3: the kept spans of `s` made into records, with the resources wait records carry (one object for
 * alike ones, the spans of a message mostly sharing the last one).
 */
function materialize(s: Scan, r: ProtoReader, spans: SpanRecord[], resourceOf: (res: Attributes) => Attributes): number {
  const b = r.bytes;
  const n = s.n;
  let lastResource: Attributes | undefined;
  let lastCut = NO_ATTRS;
  let waitEvents = 0;
  for (let i = 0; i < n; i++) {
    if (s.keep[i] === 0) continue;
    const res = s.resource[i];
    if (res !== lastResource) {
      lastResource = res;
      lastCut = resourceOf(res);
    }
    const traceId = traceIdHex(b, s.tid[i]);
    const spanId = spanIdHex(b, s.sid[i]);
    const parentSpanId = s.pid[i] >= 0 ? spanIdHex(b, s.pid[i]) : undefined;
    const stop = s.stop[i];
    const events: SpanEventRecord[] = [];
    const w0 = s.waitFirst[i];
    const wn = w0 + s.waitCount[i];
    for (let k = w0; k < wn; k++) {
      r.pos = s.waitAt[k];
      const e = readEvent(r, s.waitEnd[k]);
      events.push(makeEvent(e.name, e.timeUnixNano, eventAttrs(e.attributes) ?? NO_ATTRS));
    }
    let attributes: WireAttrs | undefined;
    const a0 = i * SLOTS;
    for (let k = 0; k < SLOTS; k++) {
      const at = s.kvAt[a0 + k];
      if (at < 0) continue;
      r.pos = at;
      const v = wireValue(readKeyValue(r, s.kvEnd[a0 + k]));
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
  return waitEvents;
}

/**
 * Decodes an OTLP `ExportTraceServiceRequest` (or `TracesData`) and cuts it as `builder` would cut the
 * decoded spans, by its filter; updates the builder's counts and its memory of open spans.
 * @param source the input's name for error messages
 * @throws DecodeError (`bad-input`) as `decodeOtlpTracesProto` throws it for the same bytes
 */
export function cutOtlpTracesProto(bytes: Uint8Array, source: string, builder: WaitRecordBuilder): CutSpans {
  const s = scan;
  const r = scanAndSelect(s, bytes, source, builder);
  for (let i = 0; i < s.n; i++) if (s.keep[i] !== 0) tellPassed(builder, s, bytes, i);
  const spans: SpanRecord[] = [];
  const resources = new Map<string, Attributes>();
  const waitEvents = materialize(s, r, spans, (res) => cutResource(resources, res));
  const c = builder.counts;
  c.spansKept += spans.length;
  c.eventsKept += waitEvents;
  return { spans, spansIn: s.n, waitEvents };
}

/** Tells the builder of kept span `i` where its memory of open spans or wanted ancestors may hold it. */
function tellPassed(builder: WaitRecordBuilder, s: Scan, bytes: Uint8Array, i: number): void {
  // Most kept spans are in neither memory: a numeric test first, before the ids are looked up.
  const key = spanIdKey(bytes, s.sid[i]);
  const ended = s.stop[i] !== 0;
  if (builder.wanted.mayHave(key) || (ended && builder.open.mayHave(key))) builder.passed(traceIdHex(bytes, s.tid[i]), spanIdHex(bytes, s.sid[i]), ended);
}

/** Passes 1 and 2 of `cutOtlpTracesProto` into `s`, with the builder's counts of what came in and its memory of open spans. */
function scanAndSelect(s: Scan, bytes: Uint8Array, source: string, builder: WaitRecordBuilder): ProtoReader {
  const r = scanInto(s, bytes, new DecodeContext(source, null), 0);
  const n = s.n;
  const c = builder.counts;
  c.spansIn += n;
  // An open span, remembered before the filter looks: its ended version may be in the same input.
  for (let i = 0; i < n; i++) {
    c.eventsIn += s.eventCount[i];
    if (s.stop[i] === 0) builder.open.add(traceIdHex(bytes, s.tid[i]), spanIdHex(bytes, s.sid[i]));
  }
  select(s, r, builder);
  return r;
}

/**
 * The spans the cut keeps of one message, before pass 3: their bytes and where pass 1 found their fields in
 * them, in arrays of their own, so that they can move to another thread whole (`postMessage`, the arrays in
 * its transfer list) and be made into records there (`keptRecords`), records equal to those
 * `cutOtlpTracesProto` makes. The Kafka thread sends these: making the records and their strings is left to
 * the event loop, which takes them in.
 *
 * Layout: `bytes`, each kept span's bytes from the start of its content to its end, one after another; in
 * `ints`, per span: where its trace id, span id, parent id (-1 none), name (-1 none) are and where it ends
 * (all in `bytes`), its kind, the index of its resource in `resources`, its wait events' count, then each
 * wait event's content's start and end, then the start and end of each kept attribute's KeyValue (-1 none),
 * `SPAN_ATTRS` order; in `nums`, per span: its start and end times.
 */
export interface KeptSpans {
  count: number;
  bytes: Uint8Array;
  ints: Int32Array;
  nums: Float64Array;
  /** The spans' resources, cut (`waitResource`); spans of one resource share its entry. */
  resources: Attributes[];
  /** Spans in the message. */
  spansIn: number;
  /** Wait events of the kept spans. */
  waitEvents: number;
}

/** Ints of `KeptSpans.ints` a span takes before its wait events. */
const KEPT_HEAD = 8;

/**
 * `cutOtlpTracesProto`, up to the records: the kept spans of the message as `KeptSpans`, the builder's counts
 * and memory updated as `cutOtlpTracesProto` updates them. `keptRecords` makes them the records it would have
 * made.
 * @throws DecodeError (`bad-input`) as `cutOtlpTracesProto` throws it for the same bytes
 */
export function cutOtlpTracesProtoKept(bytes: Uint8Array, source: string, builder: WaitRecordBuilder): KeptSpans {
  const s = scan;
  scanAndSelect(s, bytes, source, builder);
  const n = s.n;
  let count = 0;
  let size = 0;
  let intCount = 0;
  let waitEvents = 0;
  for (let i = 0; i < n; i++) {
    if (s.keep[i] === 0) continue;
    count++;
    size += s.end[i] - s.at[i];
    intCount += KEPT_HEAD + 2 * s.waitCount[i] + 2 * SLOTS;
    waitEvents += s.waitCount[i];
  }
  const out = new Uint8Array(size);
  const ints = new Int32Array(intCount);
  const nums = new Float64Array(2 * count);
  const resources: Attributes[] = [];
  const byKey = new Map<string, Attributes>();
  const index = new Map<Attributes, number>();
  let lastResource: Attributes | undefined;
  let lastIndex = -1;
  let o = 0;
  let k = 0;
  let m = 0;
  const rebase = (p: number, delta: number) => (p < 0 ? -1 : p + delta);
  for (let i = 0; i < n; i++) {
    if (s.keep[i] === 0) continue;
    const at = s.at[i];
    const end = s.end[i];
    const delta = o - at;
    out.set(bytes.subarray(at, end), o);
    o += end - at;
    const res = s.resource[i];
    if (res !== lastResource) {
      lastResource = res;
      const cut = cutResource(byKey, res);
      let ri = index.get(cut);
      if (ri === undefined) {
        ri = resources.length;
        resources.push(cut);
        index.set(cut, ri);
      }
      lastIndex = ri;
    }
    ints[k++] = s.tid[i] + delta;
    ints[k++] = s.sid[i] + delta;
    ints[k++] = rebase(s.pid[i], delta);
    ints[k++] = rebase(s.name[i], delta);
    ints[k++] = end + delta;
    ints[k++] = s.kind[i];
    ints[k++] = lastIndex;
    const w0 = s.waitFirst[i];
    const wn = s.waitCount[i];
    ints[k++] = wn;
    for (let w = w0; w < w0 + wn; w++) {
      ints[k++] = s.waitAt[w] + delta;
      ints[k++] = s.waitEnd[w] + delta;
    }
    const a0 = i * SLOTS;
    for (let a = 0; a < SLOTS; a++) {
      ints[k++] = rebase(s.kvAt[a0 + a], delta);
      ints[k++] = rebase(s.kvEnd[a0 + a], delta);
    }
    nums[m++] = s.start[i];
    nums[m++] = s.stop[i];
    tellPassed(builder, s, bytes, i);
  }
  const c = builder.counts;
  c.spansKept += count;
  c.eventsKept += waitEvents;
  return { count, bytes: out, ints, nums, resources, spansIn: n, waitEvents };
}

/** The kept spans' scan, on the thread that makes them records, reused. */
const keptScan = new Scan();

/**
 * The records of `KeptSpans`: those `cutOtlpTracesProto` would have made of their message, in the same order
 * and shapes, spans of one resource sharing its object.
 */
export function keptRecords(kept: KeptSpans, source: string): SpanRecord[] {
  const s = keptScan;
  s.reset();
  const ints = kept.ints;
  const nums = kept.nums;
  let k = 0;
  for (let j = 0; j < kept.count; j++) {
    s.room();
    const i = s.add();
    s.tid[i] = ints[k++];
    s.sid[i] = ints[k++];
    s.pid[i] = ints[k++];
    s.name[i] = ints[k++];
    s.end[i] = ints[k++];
    s.kind[i] = ints[k++];
    s.resource[i] = kept.resources[ints[k++]];
    const wn = ints[k++];
    s.waitFirst[i] = s.waitN;
    s.waitCount[i] = wn;
    for (let w = 0; w < wn; w++) s.addWait(ints[k++], ints[k++]);
    const a0 = i * SLOTS;
    for (let a = 0; a < SLOTS; a++) {
      s.kvAt[a0 + a] = ints[k++];
      s.kvEnd[a0 + a] = ints[k++];
    }
    s.start[i] = nums[2 * j];
    s.stop[i] = nums[2 * j + 1];
    s.keep[i] = 1;
  }
  if (k !== ints.length || 2 * kept.count !== nums.length) throw new Error('kept spans: their fields do not end where they do');
  const spans: SpanRecord[] = [];
  materialize(s, new ProtoReader(kept.bytes, source, 0), spans, (res) => res);
  // Let go of the resources.
  s.reset();
  return spans;
}

/** What `WholeInputCut` read and kept. */
export interface WholeInputCounts {
  /** Spans read, of every format. */
  spansIn: number;
  /** Spans kept: all of the formats not cut, and what the cut kept of OTLP protobuf. */
  spansKept: number;
  /** Rounds of pass 2 that followed ancestor chains from one message into others. */
  rounds: number;
}

/** One input of a `WholeInputCut`, in input order. */
type WholeInput = { scan: Scan; reader: ProtoReader } | { batch: DecodedBatch };

const NO_IDS: readonly string[] = [];
/**
 * OTLP protobuf trace messages smaller than this many bytes are decoded whole (and fed whole) by
 * `WholeInputCut`: a scan kept until the end costs a message more than a few decoded spans do.
 */
const WHOLE_BELOW = 8 << 10;
/** An input whose records were made. */
const DONE: WholeInput = { batch: { spans: [], logEvents: [] } };
/** The key of a span: its trace id and span id. */
const idKey = (traceId: string, spanId: string): string => traceId + spanId;

/**
 * The cut of a whole recorded input (`waitgraph analyze`): the filter of `selectWaitSpans`, exact over the
 * input rather than per message, so the findings are those of every span, whatever messages or files the
 * spans of a trace are spread over and in whatever order.
 *
 * OTLP protobuf trace messages are scanned (pass 1) as they come and kept as facts; other inputs (OTLP JSON,
 * Jaeger JSON, log records), and protobuf messages of a few spans, are decoded whole. `finish` then decides
 * what to keep with the whole input in view, where the per-message filter can not:
 * - every version of a span of which some version is open (a snapshot and its ended version, in any order);
 * - the ancestors of an ended span with wait events, followed from message to message until the chain ends
 *   (rounds: each looks in every message for the spans the last one found missing);
 * - the span a wait log record names, and its ancestors, as the span's own wait events would.
 * Every span that is fed is cut alike, as wait records cut it (the attributes and events detection reads),
 * so the engine's choice among versions is the same whichever format a version came in. When nothing was
 * scanned, everything is fed as it came.
 */
export class WholeInputCut {
  private readonly inputs: WholeInput[] = [];
  private readonly proxies: ReadonlySet<string> | undefined;
  private readonly wholeBelow: number;
  readonly counts: WholeInputCounts = { spansIn: 0, spansKept: 0, rounds: 0 };

  /**
   * @param options.proxyServices as `WaitFilterOptions.proxyServices`
   * @param options.wholeBelow protobuf trace messages of fewer bytes are decoded whole (default 8 KiB)
   */
  constructor(options: { proxyServices?: readonly string[]; wholeBelow?: number } = {}) {
    this.proxies = options.proxyServices?.length ? new Set(options.proxyServices) : undefined;
    this.wholeBelow = options.wholeBelow ?? WHOLE_BELOW;
  }

  /**
   * Reads one input of any supported format (as `decodeBufferLenient`), its OTLP protobuf trace messages
   * scanned, not decoded. Errors are added to `errors`; the input's good records are kept.
   */
  addBuffer(buf: Uint8Array, name: string, errors: DecodeError[]): void {
    const ctx = new DecodeContext(name, errors);
    const tracesProto = (ctx.tracesProto = (bytes, origin) => {
      if (bytes.length < this.wholeBelow) {
        // A message of a few spans costs less decoded whole than kept as a scan.
        ctx.tracesProto = undefined;
        decodeProtoInto(ctx, bytes, origin, 'traces');
        ctx.tracesProto = tracesProto;
        return;
      }
      // Room for spans of 256 bytes, about half the size of a span of the benchmark workload.
      const scan = new Scan(Math.max(16, bytes.length >> 8));
      const reader = scanInto(scan, bytes, ctx, origin);
      scan.trim();
      this.counts.spansIn += scan.n;
      this.inputs.push({ scan, reader });
    });
    decodeBufferInto(ctx, buf);
    this.addDecoded(ctx.batch());
  }

  /** Adds records decoded whole: all of them are fed. */
  addDecoded(batch: DecodedBatch): void {
    if (batch.spans.length === 0 && batch.logEvents.length === 0) return;
    this.counts.spansIn += batch.spans.length;
    this.inputs.push({ batch });
  }

  /** Passes 2 and 3: the input, cut, a batch an input in input order (made as they are taken). */
  *finish(): Generator<DecodedBatch, void, undefined> {
    const inputs = this.inputs;
    if (!inputs.some((x) => 'scan' in x)) {
      // Nothing was scanned: all of it is fed, as it came.
      for (let k = 0; k < inputs.length; k++) {
        const x = inputs[k] as { batch: DecodedBatch };
        inputs[k] = DONE;
        this.counts.spansKept += x.batch.spans.length;
        yield x.batch;
      }
      inputs.length = 0;
      return;
    }
    // The ids of open versions, with a numeric first test by span id; the parents of the spans decoded whole.
    const open = new Set<string>();
    const openKeys = new Set<number>();
    const decodedParents = new Map<string, string[]>();
    for (const x of inputs) {
      if ('batch' in x) {
        for (const sp of x.batch.spans) {
          const k = idKey(sp.traceId, sp.spanId);
          if (sp.endTimeUnixNano === 0) {
            open.add(k);
            openKeys.add(spanIdKeyOfHex(sp.spanId));
          }
          if (sp.parentSpanId === undefined) continue;
          const ps = decodedParents.get(k);
          if (ps === undefined) decodedParents.set(k, [sp.parentSpanId]);
          else if (!ps.includes(sp.parentSpanId)) ps.push(sp.parentSpanId);
        }
      } else {
        const { scan: s, reader } = x;
        const b = reader.bytes;
        for (let i = 0; i < s.n; i++) {
          if (s.stop[i] !== 0) continue;
          open.add(idKey(traceIdHex(b, s.tid[i]), spanIdHex(b, s.sid[i])));
          openKeys.add(spanIdKey(b, s.sid[i]));
        }
      }
    }
    // Spans kept with their ancestors, beyond what each message keeps by itself: the chain ends found so
    // far, and the spans of wait log records. Chains through the spans decoded whole are followed at once.
    const wanted = new Set<string>();
    let next: string[] = [];
    const want = (traceId: string, spanId: string): void => {
      const todo = [spanId];
      for (let id = todo.pop(); id !== undefined; id = todo.pop()) {
        const k = idKey(traceId, id);
        if (wanted.has(k)) continue;
        wanted.add(k);
        next.push(k);
        for (const p of decodedParents.get(k) ?? NO_IDS) todo.push(p);
      }
    };
    // What each message keeps by its own spans, and their ancestors in it; chains that leave it are wanted.
    for (const x of inputs) {
      if ('batch' in x) {
        for (const sp of x.batch.spans) if (sp.endTimeUnixNano !== 0 && sp.parentSpanId !== undefined && hasWaitEvent(sp)) want(sp.traceId, sp.parentSpanId);
        for (const e of x.batch.logEvents) if (WAIT_EVENTS.has(e.name)) want(e.traceId, e.spanId);
        continue;
      }
      const { scan: s, reader } = x;
      const b = reader.bytes;
      const chains = classify(s, reader, this.proxies, (i, keptByFacts) =>
        !keptByFacts && openKeys.has(spanIdKey(b, s.sid[i])) && open.has(idKey(traceIdHex(b, s.tid[i]), spanIdHex(b, s.sid[i]))) ? 1 : 0,
      );
      s.walked.fill(0, 0, s.n);
      s.tableMask = 0;
      if (!chains) continue;
      indexIds(s, b);
      for (let i = 0; i < s.n; i++) {
        if (s.keep[i] !== 2) continue;
        const end = walkUp(s, b, i);
        if (end >= 0) want(traceIdHex(b, s.tid[end]), spanIdHex(b, s.pid[end]));
      }
    }
    // Rounds: the wanted spans of the last, kept wherever they are, and the chains followed on from them.
    while (next.length !== 0) {
      this.counts.rounds++;
      const now = new Set(next);
      const nowKeys = new Set<number>();
      for (const k of next) nowKeys.add(spanIdKeyOfHex(k.slice(32)));
      next = [];
      for (const x of inputs) {
        if ('batch' in x) continue;
        const { scan: s, reader } = x;
        const b = reader.bytes;
        for (let i = 0; i < s.n; i++) {
          if (!nowKeys.has(spanIdKey(b, s.sid[i])) || !now.has(idKey(traceIdHex(b, s.tid[i]), spanIdHex(b, s.sid[i])))) continue;
          if (s.keep[i] === 0) s.keep[i] = 1;
          if (s.walked[i]) continue; // a walk went on from it already
          s.walked[i] = 1;
          if (s.tableMask === 0) indexIds(s, b);
          const end = walkUp(s, b, i);
          if (end >= 0) want(traceIdHex(b, s.tid[end]), spanIdHex(b, s.pid[end]));
        }
      }
    }
    // Pass 3, an input at a time as the caller takes them: the records of one input are let go before
    // the next is made.
    const resources = new Map<string, Attributes>();
    for (let k = 0; k < inputs.length; k++) {
      const x = inputs[k];
      inputs[k] = DONE;
      const spans: SpanRecord[] = [];
      const logEvents: LogEventRecord[] = [];
      if ('batch' in x) {
        for (const sp of x.batch.spans) spans.push(cutSpanRecord(sp, cutResource(resources, sp.resource)));
        for (const e of x.batch.logEvents) {
          if (WAIT_EVENTS.has(e.name)) logEvents.push(makeLogEvent(e.traceId, e.spanId, e.name, e.timeUnixNano, eventAttrs(e.attributes) ?? NO_ATTRS, cutResource(resources, e.resource)));
        }
      } else {
        materialize(x.scan, x.reader, spans, (res) => cutResource(resources, res));
      }
      this.counts.spansKept += spans.length;
      yield { spans, logEvents };
    }
    inputs.length = 0;
  }
}

/** The resource wait records carry for `res`, one object for alike ones. */
function cutResource(resources: Map<string, Attributes>, res: Attributes): Attributes {
  const key = waitResourceKey(res);
  let cut = resources.get(key);
  if (cut === undefined) resources.set(key, (cut = waitResource(res) as Attributes));
  return cut;
}

/** A decoded span cut as a wait record cuts it: the attributes and events detection reads. */
function cutSpanRecord(s: SpanRecord, resource: Attributes): SpanRecord {
  const events: SpanEventRecord[] = [];
  for (const e of s.events) if (WAIT_EVENTS.has(e.name)) events.push(makeEvent(e.name, e.timeUnixNano, eventAttrs(e.attributes) ?? NO_ATTRS));
  const attributes = (spanAttrs(s.attributes) as Attributes | undefined) ?? NO_ATTRS;
  return makeSpan(s.traceId, s.spanId, s.parentSpanId, s.name, s.kind, s.startTimeUnixNano, s.endTimeUnixNano, attributes, resource, events);
}
