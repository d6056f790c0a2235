/**
 * Cut frames: how the Kafka thread (kafka-thread.ts) hands the inputs it decoded and cut to the event loop
 * that runs detection. The records of a fetched batch are written flat, into two typed arrays and a table of
 * their distinct strings, and read back on the other side into records equal to the ones written, in the
 * same shapes (`makeSpan`, `makeEvent`, `makeLogEvent`; the attribute keys in their order; `NO_ATTRS` where
 * it was; one object for a resource that spans shared).
 *
 * Why not let `postMessage` clone the records: on the Kafka benchmark's workload, reading a structured clone
 * back cost the event loop 1.7 µs a cut span, half of what detection itself costs a span; reading a frame
 * back, 0.85 µs, and writing it 0.6 µs on the Kafka thread. The typed arrays move without a copy; the
 * strings are cloned, once each per frame.
 *
 * OTLP protobuf traces, most of the input, come as the kept spans' bytes instead (`KeptSpans`, in arrays of
 * their own that move with the frame): the event loop makes their records (`keptRecords`), as the cut would
 * have, and the Kafka thread neither makes records nor strings of them. On the Kafka benchmark's workload
 * that halved what the Kafka thread spends a span after the scan, and it is the busier of the two threads.
 *
 * Layout, all in `ints` (Int32) but numbers, which go to `nums` (Float64) in the same order as read:
 * - frame: input count; then per input its form, then what that form holds:
 *   - records: spans in, wait events, span count, log event count, resource count; its resources
 *     (attributes each), its spans, its log events;
 *   - kept spans: spans in, wait events, resource count, its resources (attributes each), and the index
 *     of its `KeptSpans` arrays in `kept`;
 * - span: trace id, span id, parent id (-1 none), name (strings), kind, resource index, start, end (nums),
 *   attributes, event count, then per event: name, time (num), attributes;
 * - log event: trace id, span id, name, time (num), attributes, resource index;
 * - attributes: -1 for `NO_ATTRS`, else a count and, per attribute, key (string), value;
 * - value: a tag (string, number, true, false, null, array) and what it holds (string index, a num, or a
 *   count of values that follow).
 */
import { makeEvent, makeLogEvent, makeSpan, setAttr } from '../decode/records.js';
import type { AttrValue, Attributes, LogEventRecord, SpanEventRecord, SpanKind, SpanRecord } from '../model/span.js';
import { NO_ATTRS } from '../scale/wait-records.js';
import { keptRecords, type KeptSpans } from '../scale/wait-cut.js';
import type { KeptInput, WaitInput } from './wait-input.js';

/** A batch of cut inputs, flat: what one `postMessage` carries (its arrays in its transfer list: `frameTransfer`). */
export interface CutFrame {
  ints: Int32Array;
  nums: Float64Array;
  strings: string[];
  /** The arrays of the inputs that came as kept spans; their resources and counts are in `ints`. */
  kept: KeptArrays[];
}

/** `KeptSpans` but for what the frame's `ints` carries. */
type KeptArrays = Pick<KeptSpans, 'count' | 'bytes' | 'ints' | 'nums'>;

/** The buffers of a frame, to move rather than copy: `postMessage`'s transfer list. */
export function frameTransfer(frame: CutFrame): ArrayBuffer[] {
  const out = [frame.ints.buffer as ArrayBuffer, frame.nums.buffer as ArrayBuffer];
  for (const k of frame.kept) out.push(k.bytes.buffer as ArrayBuffer, k.ints.buffer as ArrayBuffer, k.nums.buffer as ArrayBuffer);
  return out;
}

/** An input's form in a frame. */
const F_RECORDS = 0;
const F_KEPT = 1;

const V_STRING = 0;
const V_NUMBER = 1;
const V_TRUE = 2;
const V_FALSE = 3;
const V_NULL = 4;
const V_ARRAY = 5;

/** Writes inputs into one frame; reused from frame to frame. */
export class CutFrameWriter {
  private ints = new Int32Array(4096);
  private ni = 0;
  private nums = new Float64Array(1024);
  private nn = 0;
  private strings: string[] = [];
  private readonly stringIndex = new Map<string, number>();
  private kept: KeptArrays[] = [];
  private inputs = 0;

  /** Adds one input to the frame being written. A `KeptInput`'s arrays go with the frame, no longer its own. */
  add(input: WaitInput | KeptInput): void {
    if ('kept' in input) {
      this.addKept(input.kept);
      return;
    }
    const { spans, logEvents } = input.batch;
    this.inputs++;
    this.int(F_RECORDS);
    this.int(input.spans);
    this.int(input.waitEvents);
    this.int(spans.length);
    this.int(logEvents.length);
    // Resources by identity: the spans of a message share a few.
    const resources = new Map<Attributes, number>();
    for (const s of spans) if (!resources.has(s.resource)) resources.set(s.resource, resources.size);
    for (const e of logEvents) if (!resources.has(e.resource)) resources.set(e.resource, resources.size);
    this.int(resources.size);
    for (const r of resources.keys()) this.attrs(r);
    for (const s of spans) {
      this.str(s.traceId);
      this.str(s.spanId);
      if (s.parentSpanId === undefined) this.int(-1);
      else this.str(s.parentSpanId);
      this.str(s.name);
      this.int(s.kind);
      this.int(resources.get(s.resource)!);
      this.num(s.startTimeUnixNano);
      this.num(s.endTimeUnixNano);
      this.attrs(s.attributes);
      this.int(s.events.length);
      for (const e of s.events) {
        this.str(e.name);
        this.num(e.timeUnixNano);
        this.attrs(e.attributes);
      }
    }
    for (const e of logEvents) {
      this.str(e.traceId);
      this.str(e.spanId);
      this.str(e.name);
      this.num(e.timeUnixNano);
      this.attrs(e.attributes);
      this.int(resources.get(e.resource)!);
    }
  }

  private addKept(k: KeptSpans): void {
    this.inputs++;
    this.int(F_KEPT);
    this.int(k.spansIn);
    this.int(k.waitEvents);
    this.int(k.resources.length);
    for (const r of k.resources) this.attrs(r);
    this.int(this.kept.length);
    this.kept.push({ count: k.count, bytes: k.bytes, ints: k.ints, nums: k.nums });
  }

  /** Inputs added since the last `take`. */
  get size(): number {
    return this.inputs;
  }

  /** The frame of the inputs added since the last `take`, its arrays its own; the writer starts afresh. */
  take(): CutFrame {
    const ints = new Int32Array(this.ni + 1);
    ints[0] = this.inputs;
    ints.set(this.ints.subarray(0, this.ni), 1);
    const frame: CutFrame = { ints, nums: this.nums.slice(0, this.nn), strings: this.strings, kept: this.kept };
    this.ni = 0;
    this.nn = 0;
    this.inputs = 0;
    this.strings = [];
    this.kept = [];
    this.stringIndex.clear();
    return frame;
  }

  private int(v: number): void {
    if (this.ni === this.ints.length) this.ints = doubled(this.ints);
    this.ints[this.ni++] = v;
  }

  private num(v: number): void {
    if (this.nn === this.nums.length) this.nums = doubled(this.nums);
    this.nums[this.nn++] = v;
  }

  private str(s: string): void {
    let i = this.stringIndex.get(s);
    if (i === undefined) {
      i = this.strings.length;
      this.strings.push(s);
      this.stringIndex.set(s, i);
    }
    this.int(i);
  }

  private attrs(a: Attributes): void {
    if (a === NO_ATTRS) {
      this.int(-1);
      return;
    }
    const keys = Object.keys(a);
    this.int(keys.length);
    for (const k of keys) {
      this.str(k);
      this.value(a[k]);
    }
  }

  private value(v: AttrValue): void {
    if (typeof v === 'string') {
      this.int(V_STRING);
      this.str(v);
    } else if (typeof v === 'number') {
      this.int(V_NUMBER);
      this.num(v);
    } else if (typeof v === 'boolean') this.int(v ? V_TRUE : V_FALSE);
    else if (v === null) this.int(V_NULL);
    else {
      this.int(V_ARRAY);
      this.int(v.length);
      for (const x of v) this.value(x);
    }
  }
}

/** `a`, in an array of its kind twice its size. */
function doubled<T extends Int32Array | Float64Array>(a: T): T {
  const more = new (a.constructor as new (n: number) => T)(a.length * 2);
  more.set(a);
  return more;
}

/** A frame's inputs, read back: records equal to those written, in the same order. */
export function readCutFrame(frame: CutFrame): WaitInput[] {
  return new FrameReader(frame).inputs();
}

class FrameReader {
  private i = 0;
  private n = 0;
  private readonly ints: Int32Array;
  private readonly nums: Float64Array;
  private readonly strings: string[];
  private readonly kept: KeptArrays[];

  constructor(frame: CutFrame) {
    this.ints = frame.ints;
    this.nums = frame.nums;
    this.strings = frame.strings;
    this.kept = frame.kept;
  }

  inputs(): WaitInput[] {
    const count = this.ints[this.i++];
    const out: WaitInput[] = [];
    for (let k = 0; k < count; k++) out.push(this.input());
    if (this.i !== this.ints.length || this.n !== this.nums.length) throw new Error('cut frame: its records do not end where it does');
    return out;
  }

  private input(): WaitInput {
    const ints = this.ints;
    const form = ints[this.i++];
    if (form === F_KEPT) return this.keptInput();
    if (form !== F_RECORDS) throw new Error(`cut frame: unknown input form ${form}`);
    const spansIn = ints[this.i++];
    const waitEvents = ints[this.i++];
    const spanCount = ints[this.i++];
    const logCount = ints[this.i++];
    const resourceCount = ints[this.i++];
    const resources: Attributes[] = [];
    for (let r = 0; r < resourceCount; r++) resources.push(this.attrs());
    const spans: SpanRecord[] = [];
    for (let s = 0; s < spanCount; s++) {
      const traceId = this.str();
      const spanId = this.str();
      const p = ints[this.i++];
      const parentSpanId = p < 0 ? undefined : this.strings[p];
      const name = this.str();
      const kind = ints[this.i++] as SpanKind;
      const resource = resources[ints[this.i++]];
      const start = this.nums[this.n++];
      const end = this.nums[this.n++];
      const attributes = this.attrs();
      const eventCount = ints[this.i++];
      const events: SpanEventRecord[] = [];
      for (let e = 0; e < eventCount; e++) {
        const eventName = this.str();
        const time = this.nums[this.n++];
        events.push(makeEvent(eventName, time, this.attrs()));
      }
      spans.push(makeSpan(traceId, spanId, parentSpanId, name, kind, start, end, attributes, resource, events));
    }
    const logEvents: LogEventRecord[] = [];
    for (let e = 0; e < logCount; e++) {
      const traceId = this.str();
      const spanId = this.str();
      const name = this.str();
      const time = this.nums[this.n++];
      const attributes = this.attrs();
      logEvents.push(makeLogEvent(traceId, spanId, name, time, attributes, resources[ints[this.i++]]));
    }
    return { batch: { spans, logEvents }, spans: spansIn, waitEvents };
  }

  private keptInput(): WaitInput {
    const ints = this.ints;
    const spansIn = ints[this.i++];
    const waitEvents = ints[this.i++];
    const resourceCount = ints[this.i++];
    const resources: Attributes[] = [];
    for (let r = 0; r < resourceCount; r++) resources.push(this.attrs());
    const k = this.kept[ints[this.i++]];
    if (k === undefined) throw new Error('cut frame: kept spans it does not carry');
    const spans = keptRecords({ ...k, resources, spansIn, waitEvents }, 'cut frame');
    return { batch: { spans, logEvents: [] }, spans: spansIn, waitEvents };
  }

  private str(): string {
    return this.strings[this.ints[this.i++]];
  }

  private attrs(): Attributes {
    const count = this.ints[this.i++];
    if (count < 0) return NO_ATTRS;
    const a: Attributes = {};
    for (let k = 0; k < count; k++) {
      const key = this.str();
      setAttr(a, key, this.value());
    }
    return a;
  }

  private value(): AttrValue {
    const tag = this.ints[this.i++];
    switch (tag) {
      case V_STRING:
        return this.str();
      case V_NUMBER:
        return this.nums[this.n++];
      case V_TRUE:
        return true;
      case V_FALSE:
        return false;
      case V_NULL:
        return null;
      case V_ARRAY: {
        const count = this.ints[this.i++];
        const out: AttrValue[] = [];
        for (let k = 0; k < count; k++) out.push(this.value());
        return out;
      }
      default:
        throw new Error(`cut frame: unknown value tag ${tag}`);
    }
  }
}
