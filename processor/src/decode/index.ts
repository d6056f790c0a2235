/**
 * The input decoders of the processor: OTLP JSON, OTLP protobuf (traces and logs), Jaeger JSON, and
 * format sniffing for files. Every decoder yields a DecodedBatch of normalized records (see
 * `../model/span.ts` and the shape notes in `records.ts`) or throws a DecodeError saying what is wrong and
 * where; the lenient variants return the good records together with the errors.
 */
export { DecodeError, DEFAULT_SOURCE } from './decode-error.js';
export type { DecodeLocation } from './decode-error.js';
export { decodeOtlpJson, isOtlpJson } from './otlp-json.js';
export { decodeOtlpLogsProto, decodeOtlpProto, decodeOtlpTracesProto } from './otlp-proto.js';
export type { ProtoDecodeOptions, ProtoSignal } from './otlp-proto.js';
export { decodeJaegerJson, isJaegerJson } from './jaeger-json.js';
export { decodeBuffer, decodeBufferLenient, decodeFile, decodeFileLenient } from './sniff.js';
export type { LenientDecodeResult } from './sniff.js';
