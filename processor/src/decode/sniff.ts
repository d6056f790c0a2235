/**
 * Format sniffing for inputs of unknown kind (`waitgraph analyze <files>`): gzip is unwrapped; text starting
 * with `{` or `[` is JSON (one document or JSON Lines; OTLP or Jaeger by its keys); bytes starting with a
 * zero are the Collector file exporter's protobuf stream (each message behind a 4-byte big-endian length,
 * `format: proto`);
 * anything else is one OTLP protobuf message, traces or logs by its wire shape.
 */
import { readFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import type { DecodedBatch } from '../model/span.js';
import { WaitgraphError } from '../errors.js';
import { DecodeContext } from './context.js';
import type { DecodeError } from './decode-error.js';
import { decodeJaegerJsonInto, isJaegerJson } from './jaeger-json.js';
import { forEachJsonDocument } from './json-text.js';
import { decodeOtlpJsonInto, isOtlpJson } from './otlp-json.js';
import { decodeProtoInto } from './otlp-proto.js';

/** What a lenient decode yields: the good records, and one error per bad span, record, line or message. */
export interface LenientDecodeResult {
  batch: DecodedBatch;
  errors: DecodeError[];
}

/**
 * Decodes an input of any supported format, telling the format from the bytes.
 * @param buf the input's bytes
 * @param name the input's name (a file name) for error messages
 * @throws DecodeError at the first problem
 */
export function decodeBuffer(buf: Uint8Array, name: string): DecodedBatch {
  const ctx = new DecodeContext(name, null);
  decodeBufferInto(ctx, buf);
  return ctx.batch();
}

/**
 * Decodes like {@link decodeBuffer} but keeps going past bad input: a bad span or log record is skipped, a
 * bad JSON line is skipped (the other lines are kept), a truncated protobuf message keeps the records before
 * the damage. Every problem is returned as a DecodeError.
 */
export function decodeBufferLenient(buf: Uint8Array, name: string): LenientDecodeResult {
  const errors: DecodeError[] = [];
  const ctx = new DecodeContext(name, errors);
  decodeBufferInto(ctx, buf);
  return { batch: ctx.batch(), errors };
}

/**
 * Reads and decodes one file of any supported format.
 * @throws DecodeError on bad content; WaitgraphError `io` if the file cannot be read
 */
export async function decodeFile(path: string): Promise<DecodedBatch> {
  return decodeBuffer(await readInput(path), path);
}

/** Reads and decodes one file like {@link decodeBufferLenient}. */
export async function decodeFileLenient(path: string): Promise<LenientDecodeResult> {
  return decodeBufferLenient(await readInput(path), path);
}

async function readInput(path: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new WaitgraphError('io', `cannot read ${path}: ${(err as Error).message}`, {
      cause: err,
      retriable: code !== 'ENOENT' && code !== 'EISDIR' && code !== 'EACCES',
    });
  }
}

/** Decodes any supported input into `ctx`. */
export function decodeBufferInto(ctx: DecodeContext, buf: Uint8Array): void {
  if (buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) {
    let inflated: Uint8Array;
    try {
      inflated = gunzipSync(buf);
    } catch (err) {
      ctx.fail(`bad gzip data: ${(err as Error).message}`, { offset: 0 }, err);
      return;
    }
    decodeBufferInto(ctx, inflated);
    return;
  }
  if (looksLikeJson(buf)) {
    const text = new TextDecoder().decode(buf);
    // A protobuf message may start with 0x0a ('\n'); if the JSON reading fails where a newline led in,
    // the protobuf reading gets its chance before the JSON error is reported.
    if (buf[0] === 0x0a && !jsonParses(text)) {
      const probe = new DecodeContext(ctx.source, []);
      decodeProtoInto(probe, buf, 0, undefined);
      if (probe.errors!.length === 0 && (probe.spans.length > 0 || probe.logEvents.length > 0)) {
        for (const s of probe.spans) ctx.spans.push(s);
        for (const e of probe.logEvents) ctx.logEvents.push(e);
        return;
      }
    }
    forEachJsonDocument(text, ctx, (doc, line) => decodeJsonDocumentInto(ctx, doc, line));
    return;
  }
  // No protobuf message starts with a zero byte (field number 0 is invalid): this is a length-prefixed stream.
  if (buf.length > 0 && buf[0] === 0) {
    for (let p = 0; p < buf.length; ) {
      if (p + 4 > buf.length) {
        ctx.fail(`truncated: ${buf.length - p} bytes left where a 4-byte message length was expected`, { offset: p });
        return;
      }
      const n = ((buf[p] << 24) | (buf[p + 1] << 16) | (buf[p + 2] << 8) | buf[p + 3]) >>> 0;
      if (p + 4 + n > buf.length) {
        ctx.fail(`truncated: a message of ${n} bytes runs past the end of the input (${buf.length - p - 4} bytes left)`, { offset: p });
        return;
      }
      decodeProtoInto(ctx, buf.subarray(p + 4, p + 4 + n), p + 4, undefined);
      p += 4 + n;
    }
    return;
  }
  decodeProtoInto(ctx, buf, 0, undefined);
}

/** Decodes one parsed JSON document of any supported kind: OTLP, Jaeger, an array of those, or Jaeger's api_v3 `{result: ...}`. */
export function decodeJsonDocumentInto(ctx: DecodeContext, doc: unknown, line: number | undefined): void {
  if (isOtlpJson(doc)) decodeOtlpJsonInto(ctx, doc, line);
  else if (isJaegerJson(doc)) decodeJaegerJsonInto(ctx, doc, line);
  else if (Array.isArray(doc)) for (const d of doc) decodeJsonDocumentInto(ctx, d, line);
  else if (typeof doc === 'object' && doc !== null && isOtlpJson((doc as { result?: unknown }).result)) {
    decodeOtlpJsonInto(ctx, (doc as { result: unknown }).result, line);
  } else {
    ctx.fail('neither OTLP JSON ("resourceSpans", "resourceLogs") nor Jaeger JSON ("data" with traces)', { line });
  }
}

function looksLikeJson(buf: Uint8Array): boolean {
  let i = 0;
  if (buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) i = 3; // UTF-8 byte order mark
  while (i < buf.length && (buf[i] === 0x20 || buf[i] === 0x09 || buf[i] === 0x0a || buf[i] === 0x0d)) i++;
  return i < buf.length && (buf[i] === 0x7b || buf[i] === 0x5b);
}

function jsonParses(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}
