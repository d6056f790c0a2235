/**
 * One OTLP payload to a decoded batch, for every input of `waitgraph run`: an OTLP/HTTP body or a Kafka
 * message, traces or logs, protobuf or JSON. Throws a `bad-input` DecodeError for a payload it cannot use.
 */
import { decodeOtlpJson, decodeOtlpLogsProto, decodeOtlpTracesProto } from '../decode/index.js';
import type { DecodedBatch } from '../model/span.js';

/** Decodes one OTLP export request (`name` says where it came from, for error messages). */
export function decodeOtlpPayload(
  signal: 'traces' | 'logs',
  encoding: 'proto' | 'json',
  bytes: Uint8Array,
  name: string,
  spanAttributes?: ReadonlySet<string>,
): DecodedBatch {
  if (encoding === 'json') return decodeOtlpJson(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'), name);
  return signal === 'traces' ? decodeOtlpTracesProto(bytes, name, { spanAttributes }) : decodeOtlpLogsProto(bytes, name);
}
