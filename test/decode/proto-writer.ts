/**
 * A tiny protobuf writer for hand-made test messages: the shapes the OpenTelemetry serializers never
 * write (unknown fields, groups, fields out of order, negative int64s, odd lengths).
 */

/** One encoded field or a run of them. */
export type Bytes = number[];

/** A varint of a non-negative integer below 2^53, or a negative one as 10-byte two's complement. */
export function varint(n: number | bigint): Bytes {
  let v = BigInt.asUintN(64, BigInt(n));
  const out: number[] = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v !== 0n) b |= 0x80;
    out.push(b);
  } while (v !== 0n);
  return out;
}

/** A field tag. */
export function tag(field: number, wire: number): Bytes {
  return varint((field << 3) | wire);
}

/** A length-delimited field of raw bytes or nested fields. */
export function ld(field: number, ...content: Bytes[]): Bytes {
  const body = content.flat();
  return [...tag(field, 2), ...varint(body.length), ...body];
}

/** A string field. */
export function str(field: number, s: string): Bytes {
  return ld(field, [...Buffer.from(s, 'utf8')]);
}

/** A varint field. */
export function vfield(field: number, n: number | bigint): Bytes {
  return [...tag(field, 0), ...varint(n)];
}

/** A fixed64 field holding an unsigned 64-bit integer. */
export function fixed64(field: number, n: bigint): Bytes {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(n);
  return [...tag(field, 1), ...b];
}

/** A double field. */
export function double(field: number, x: number): Bytes {
  const b = Buffer.alloc(8);
  b.writeDoubleLE(x);
  return [...tag(field, 1), ...b];
}

/** A fixed32 field. */
export function fixed32(field: number, n: number): Bytes {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return [...tag(field, 5), ...b];
}

/** Raw bytes from hex. */
export function hex(h: string): Bytes {
  return [...Buffer.from(h, 'hex')];
}

/** A KeyValue with the given AnyValue content. */
export function kv(key: string, ...anyValue: Bytes[]): Bytes {
  return [...str(1, key), ...ld(2, ...anyValue)];
}

/** The message's bytes. */
export function message(...fields: Bytes[]): Uint8Array {
  return new Uint8Array(fields.flat());
}
