/**
 * The normalized span: what every decoder (OTLP JSON, OTLP protobuf, Jaeger JSON, OTLP logs) produces and
 * what the engine consumes. Times are unix nanoseconds held in a double: exact to about 256 ns, which is
 * finer than any wait the detector reasons about, and far cheaper than bigint on the hot path.
 */

/** An attribute value, flattened from OTLP's AnyValue (kvlists become JSON strings, bytes become hex). */
export type AttrValue = string | number | boolean | null | AttrValue[];

/** Attributes by key. */
export type Attributes = Record<string, AttrValue>;

/** OTLP span kinds, by their protobuf numbers. */
export const SpanKind = {
  UNSPECIFIED: 0,
  INTERNAL: 1,
  SERVER: 2,
  CLIENT: 3,
  PRODUCER: 4,
  CONSUMER: 5,
} as const;
/** An OTLP span kind number. */
export type SpanKind = (typeof SpanKind)[keyof typeof SpanKind];

/** One span event. */
export interface SpanEventRecord {
  name: string;
  /** Unix nanoseconds. */
  timeUnixNano: number;
  attributes: Attributes;
}

/** One span, or one partial-span snapshot of it. */
export interface SpanRecord {
  /** 32 lowercase hex digits. */
  traceId: string;
  /** 16 lowercase hex digits. */
  spanId: string;
  /** 16 lowercase hex digits, absent for a root span. */
  parentSpanId?: string;
  name: string;
  kind: SpanKind;
  /** Unix nanoseconds. */
  startTimeUnixNano: number;
  /** Unix nanoseconds; 0 while the span is open (a partial snapshot). */
  endTimeUnixNano: number;
  attributes: Attributes;
  /** The resource's attributes: `service.name`, `service.instance.id`, ... */
  resource: Attributes;
  events: SpanEventRecord[];
}

/** A wait event that arrived as an OTLP log record (OTEP 4430): it belongs to the span it names. */
export interface LogEventRecord {
  traceId: string;
  spanId: string;
  /** The record's `event.name`. */
  name: string;
  timeUnixNano: number;
  attributes: Attributes;
  resource: Attributes;
}

/** What a decoder yields for one input. */
export interface DecodedBatch {
  spans: SpanRecord[];
  logEvents: LogEventRecord[];
}
