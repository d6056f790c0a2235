/**
 * Byte and id conversions: bytes to lowercase hex through a precomputed table (the protobuf hot path), and
 * the id normalization of the JSON paths (hex of either case, or base64 as some tools write OTLP JSON).
 */

/** Char codes of the two hex digits of each byte value, packed as `hi | lo << 8`. */
const HEX_CODES = new Uint16Array(256);
for (let i = 0; i < 256; i++) {
  const s = i.toString(16).padStart(2, '0');
  HEX_CODES[i] = s.charCodeAt(0) | (s.charCodeAt(1) << 8);
}

// Reused for every conversion of span ids (8 bytes) and trace ids (16 bytes): fixed lengths, because
// setting an array's length is a runtime call that would cost more than the conversion.
const chars16: number[] = new Array<number>(16).fill(0);
const chars32: number[] = new Array<number>(32).fill(0);

/** Lowercase hex of `bytes[start, end)`. */
export function bytesToHex(bytes: Uint8Array, start: number, end: number): string {
  const n = end - start;
  const chars = n === 8 ? chars16 : n === 16 ? chars32 : undefined;
  if (chars === undefined) {
    let s = '';
    for (let i = start; i < end; i++) {
      const c = HEX_CODES[bytes[i]];
      s += String.fromCharCode(c & 0xff, c >> 8);
    }
    return s;
  }
  for (let i = 0, j = 0; i < n; i++, j += 2) {
    const c = HEX_CODES[bytes[start + i]];
    chars[j] = c & 0xff;
    chars[j + 1] = c >> 8;
  }
  return String.fromCharCode.apply(null, chars);
}

/** True if `bytes[start, end)` are all zero (an invalid trace or span id). */
export function allZero(bytes: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (bytes[i] !== 0) return false;
  return true;
}

const HEX_RE = /^[0-9a-fA-F]+$/;
const BASE64_RE = /^[A-Za-z0-9+/_-]+={0,2}$/;
const ZEROS = '00000000000000000000000000000000';

/**
 * Normalizes a textual id of `byteLength` bytes to lowercase hex: accepts hex of either case and base64
 * (standard or URL alphabet, padded or not). With `padShortHex`, shorter hex is left-padded with zeros
 * (Jaeger writes 64-bit trace ids as 16 digits, and old versions drop leading zeros). Returns undefined when
 * the text is neither.
 */
export function normalizeId(text: string, byteLength: number, padShortHex = false): string | undefined {
  const hexLen = byteLength * 2;
  if (text.length === hexLen && HEX_RE.test(text)) return text.toLowerCase();
  if (padShortHex && text.length > 0 && text.length < hexLen && HEX_RE.test(text)) {
    return (ZEROS.slice(0, hexLen - text.length) + text).toLowerCase();
  }
  const b64Len = Math.ceil(byteLength / 3) * 4;
  const unpadded = Math.ceil((byteLength * 4) / 3);
  if ((text.length === b64Len || text.length === unpadded) && BASE64_RE.test(text)) {
    const bytes = Buffer.from(text, text.includes('-') || text.includes('_') ? 'base64url' : 'base64');
    if (bytes.length === byteLength) return bytesToHex(bytes, 0, bytes.length);
  }
  return undefined;
}

/** True if a hex id is all zeros. */
export function isZeroHex(hex: string): boolean {
  return hex.length <= ZEROS.length && ZEROS.startsWith(hex);
}

/** Lowercase hex of base64 text (OTLP JSON `bytesValue`). */
export function base64ToHex(text: string): string {
  const bytes = Buffer.from(text, 'base64');
  return bytesToHex(bytes, 0, bytes.length);
}
