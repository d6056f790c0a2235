/**
 * A minimal protobuf wire-format reader, written for the decode hot path: no allocation per field, no
 * generated classes, plain integer arithmetic. Callers walk messages as `while (r.pos < end) switch (r.tag(end))`
 * and pass each nested message's end down, so every read is bounds-checked against the innermost message.
 *
 * Assumes what OTLP needs: varints up to 64 bits (int64 values become doubles, exact to 2^53), fixed64 read
 * as an unsigned double (unix nanoseconds, exact to ~256 ns), fixed32, doubles, length-delimited bytes and
 * UTF-8 strings. Unknown fields of any wire type (groups included) are skipped. A read past the end throws
 * a DecodeError naming the byte offset.
 */
import { DecodeError } from './decode-error.js';

/** Protobuf wire types. */
export const WireType = {
  VARINT: 0,
  FIXED64: 1,
  LEN: 2,
  START_GROUP: 3,
  END_GROUP: 4,
  FIXED32: 5,
} as const;

/** Node's native UTF-8 slicer: several times cheaper than TextDecoder for the short strings of spans. */
interface NativeSlicer {
  utf8Slice(start: number, end: number): string;
}
const HAS_UTF8_SLICE = typeof (Buffer.prototype as unknown as Partial<NativeSlicer>).utf8Slice === 'function';
const textDecoder = new TextDecoder();

const TWO_32 = 4294967296;

// Intern tables: attribute keys and many values repeat across spans ('http.request.method', 'GET'), so
// they are looked up by their bytes instead of being decoded and allocated again (and, for keys,
// internalized again by V8 on every property store). Direct-mapped, FNV-1a hashed; a collision replaces the
// entry. Keys and values have separate tables so that unique values (ids, paths) never evict keys.
const INTERN_MAX_BYTES = 32;

class InternTable {
  readonly lens: Uint8Array;
  readonly bytes: Uint8Array;
  readonly view: DataView;
  readonly strings: string[];
  readonly mask: number;
  constructor(
    slots: number,
    /** Whether to store V8's internalized copy (for property keys). */
    readonly internalizeKeys: boolean,
  ) {
    this.lens = new Uint8Array(slots);
    this.bytes = new Uint8Array(slots * INTERN_MAX_BYTES);
    this.view = new DataView(this.bytes.buffer);
    this.strings = new Array<string>(slots).fill('');
    this.mask = slots - 1;
  }
}

const KEYS = new InternTable(4096, true);
const VALUES = new InternTable(8192, false);

/** V8's internalized copy of a string: property keys are internalized anyway, doing it once here is free later. */
function internalize(s: string): string {
  const o: Record<string, number> = { [s]: 0 };
  for (const k in o) return k;
  return s;
}

/** Reads protobuf fields from a byte array. */
export class ProtoReader {
  /** The bytes being read. */
  readonly bytes: Uint8Array;
  /** Current read position in `bytes`. */
  pos = 0;
  /** Key of the last KeyValue read by the OTLP decoders (kept here to avoid a tuple per attribute). */
  lastKey = '';
  private readonly slicer: NativeSlicer;
  private readonly view: DataView;

  constructor(
    bytes: Uint8Array,
    /** The input's name, for error messages. */
    readonly source: string,
    /** Offset of `bytes` within the whole input (a frame of a length-prefixed stream), for error messages. */
    readonly origin = 0,
  ) {
    this.bytes = bytes;
    this.slicer = (Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)) as unknown as NativeSlicer;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** A DecodeError at `pos` (relative to `bytes`). */
  error(detail: string, pos = this.pos): DecodeError {
    return new DecodeError(detail, { source: this.source, offset: this.origin + pos });
  }

  /** Reads a field tag (field number << 3 | wire type). */
  tag(end: number): number {
    const t = this.uint32(end);
    if (t >>> 3 === 0) throw this.error(`invalid field number 0 (tag ${t})`, this.pos - 1);
    return t;
  }

  /** Reads a varint that fits 32 bits (tags, lengths, enums, counts); higher bits are dropped. */
  uint32(end: number): number {
    const b = this.bytes;
    let p = this.pos;
    if (p + 10 > end) return this.uint32Checked(end);
    let c = b[p++];
    let v = c & 0x7f;
    if (c < 0x80) {
      this.pos = p;
      return v;
    }
    c = b[p++];
    v |= (c & 0x7f) << 7;
    if (c < 0x80) {
      this.pos = p;
      return v;
    }
    c = b[p++];
    v |= (c & 0x7f) << 14;
    if (c < 0x80) {
      this.pos = p;
      return v;
    }
    c = b[p++];
    v |= (c & 0x7f) << 21;
    if (c < 0x80) {
      this.pos = p;
      return v;
    }
    c = b[p++];
    v = (v | ((c & 0x0f) << 28)) >>> 0;
    // A 32-bit value encoded as a sign-extended 64-bit one carries up to 5 more bytes.
    for (let i = 0; c >= 0x80; i++) {
      if (i === 5) throw this.error('malformed varint (more than 10 bytes)', this.pos);
      c = b[p++];
    }
    this.pos = p;
    return v;
  }

  private uint32Checked(end: number): number {
    const b = this.bytes;
    const start = this.pos;
    let p = start;
    let v = 0;
    for (let shift = 0; ; shift += 7) {
      if (p >= end) throw this.error('truncated varint', start);
      if (shift >= 70) throw this.error('malformed varint (more than 10 bytes)', start);
      const c = b[p++];
      if (shift < 32) v = (v | ((c & 0x7f) << shift)) >>> 0;
      if (c < 0x80) break;
    }
    this.pos = p;
    return v;
  }

  /** Reads an int64 varint as a double (two's complement for negatives; exact to 2^53). */
  int64(end: number): number {
    const b = this.bytes;
    const start = this.pos;
    let p = start;
    let lo = 0;
    let hi = 0;
    let c = 0;
    for (let i = 0; i < 4; i++) {
      if (p >= end) throw this.error('truncated varint', start);
      c = b[p++];
      lo = (lo | ((c & 0x7f) << (i * 7))) >>> 0;
      if (c < 0x80) {
        this.pos = p;
        return lo;
      }
    }
    if (p >= end) throw this.error('truncated varint', start);
    c = b[p++];
    lo = (lo | ((c & 0x7f) << 28)) >>> 0;
    hi = (c & 0x7f) >> 4;
    if (c < 0x80) {
      this.pos = p;
      return hi * TWO_32 + lo;
    }
    for (let i = 0; i < 5; i++) {
      if (p >= end) throw this.error('truncated varint', start);
      c = b[p++];
      hi = (hi | ((c & 0x7f) << (i * 7 + 3))) >>> 0;
      if (c < 0x80) {
        this.pos = p;
        return (hi | 0) * TWO_32 + lo;
      }
    }
    throw this.error('malformed varint (more than 10 bytes)', start);
  }

  /** Reads a varint and tells whether it is non-zero (bool fields). */
  bool(end: number): boolean {
    return this.int64(end) !== 0;
  }

  /** Reads a fixed64 as an unsigned double: rounded once, so exact to 2^53 and within 256 ns for nanos of today. */
  fixed64(end: number): number {
    const p = this.pos;
    if (p + 8 > end) throw this.error('truncated fixed64', p);
    const b = this.bytes;
    const lo = (b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24)) >>> 0;
    const hi = (b[p + 4] | (b[p + 5] << 8) | (b[p + 6] << 16) | (b[p + 7] << 24)) >>> 0;
    this.pos = p + 8;
    return hi * TWO_32 + lo;
  }

  /** Reads a little-endian double. */
  double(end: number): number {
    const p = this.pos;
    if (p + 8 > end) throw this.error('truncated double', p);
    this.pos = p + 8;
    return this.view.getFloat64(p, true);
  }

  /** Reads a length prefix and returns the end of the length-delimited field, checked against `end`. */
  len(end: number): number {
    const at = this.pos;
    const n = this.uint32(end);
    const e = this.pos + n;
    if (e > end) {
      throw this.error(`truncated: a field of ${n} bytes at byte ${this.origin + this.pos} runs past the end of its message at byte ${this.origin + end}`, at);
    }
    return e;
  }

  /** Skips a length-delimited bytes field and returns where its content starts; it ends at the new `pos`. */
  bytesField(end: number): number {
    const e = this.len(end);
    const p = this.pos;
    this.pos = e;
    return p;
  }

  /** Reads a length-delimited UTF-8 string. */
  string(end: number): string {
    const e = this.len(end);
    const p = this.pos;
    this.pos = e;
    if (e === p) return '';
    return HAS_UTF8_SLICE ? this.slicer.utf8Slice(p, e) : textDecoder.decode(this.bytes.subarray(p, e));
  }

  /** Reads an attribute key (a length-delimited UTF-8 string), through the key intern table. */
  key(end: number): string {
    return this.interned(end, KEYS);
  }

  /** Reads a string attribute value, through the value intern table. */
  value(end: number): string {
    return this.interned(end, VALUES);
  }

  private interned(end: number, t: InternTable): string {
    const e = this.len(end);
    const p = this.pos;
    const n = e - p;
    this.pos = e;
    if (n === 0) return '';
    if (n > INTERN_MAX_BYTES) return HAS_UTF8_SLICE ? this.slicer.utf8Slice(p, e) : textDecoder.decode(this.bytes.subarray(p, e));
    const b = this.bytes;
    // Hash the length, the first four, the middle and the last four bytes: keys share prefixes
    // ('http.', 'server.') but rarely all of these; the full comparison below settles it.
    let h = Math.imul(n ^ 0x811c9dc5, 16777619);
    if (n >= 4) {
      const q = e - 4;
      h = Math.imul(h ^ (b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24)), 16777619);
      h = Math.imul(h ^ b[p + (n >> 1)], 16777619);
      h = Math.imul(h ^ (b[q] | (b[q + 1] << 8) | (b[q + 2] << 16) | (b[q + 3] << 24)), 16777619);
    } else {
      for (let i = p; i < e; i++) h = Math.imul(h ^ b[i], 16777619);
    }
    const slot = (h ^ (h >>> 15)) & t.mask;
    const base = slot * INTERN_MAX_BYTES;
    const tb = t.bytes;
    if (t.lens[slot] === n) {
      // Four bytes at a time, then the tail.
      const v = this.view;
      const tv = t.view;
      let i = 0;
      const n4 = n & ~3;
      while (i < n4 && tv.getInt32(base + i, true) === v.getInt32(p + i, true)) i += 4;
      if (i >= n4) {
        while (i < n && tb[base + i] === b[p + i]) i++;
        if (i === n) return t.strings[slot];
      }
    }
    let s = HAS_UTF8_SLICE ? this.slicer.utf8Slice(p, e) : textDecoder.decode(this.bytes.subarray(p, e));
    if (t.internalizeKeys) s = internalize(s);
    t.lens[slot] = n;
    for (let i = 0; i < n; i++) tb[base + i] = b[p + i];
    t.strings[slot] = s;
    return s;
  }

  /** Skips the value of a field whose tag was just read. */
  skip(tag: number, end: number): void {
    switch (tag & 7) {
      case WireType.VARINT:
        this.int64(end);
        return;
      case WireType.FIXED64:
        if (this.pos + 8 > end) throw this.error('truncated fixed64');
        this.pos += 8;
        return;
      case WireType.LEN:
        this.pos = this.len(end);
        return;
      case WireType.FIXED32:
        if (this.pos + 4 > end) throw this.error('truncated fixed32');
        this.pos += 4;
        return;
      case WireType.START_GROUP: {
        const field = tag >>> 3;
        for (;;) {
          if (this.pos >= end) throw this.error(`truncated group (field ${field})`);
          const t = this.tag(end);
          if ((t & 7) === WireType.END_GROUP) {
            if (t >>> 3 !== field) throw this.error(`mismatched end of group (field ${t >>> 3}, expected ${field})`);
            return;
          }
          this.skip(t, end);
        }
      }
      default:
        throw this.error(`invalid wire type ${tag & 7} (field ${tag >>> 3})`, this.pos - 1);
    }
  }
}
