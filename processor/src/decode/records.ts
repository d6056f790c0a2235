/**
 * Constructors of the normalized records, shared by every decoder so that all of them produce objects of one
 * shape each: same properties, same order, nothing sometimes-present. V8 then keeps one hidden class per
 * record type and the engine's property reads stay monomorphic.
 *
 * Shape decision: `parentSpanId` is always present on a SpanRecord, holding `undefined` for a root span
 * (never omitted, never `''`). Test it with `span.parentSpanId === undefined` or a truthiness check.
 *
 * Sharing: all spans of one OTLP ResourceSpans (one Jaeger process) share one `resource` object. Records
 * are the engine's to read, not to mutate.
 */
import type { AttrValue, Attributes, LogEventRecord, SpanEventRecord, SpanKind, SpanRecord } from '../model/span.js';

/** Builds a SpanRecord with the canonical property order. */
export function makeSpan(
  traceId: string,
  spanId: string,
  parentSpanId: string | undefined,
  name: string,
  kind: SpanKind,
  startTimeUnixNano: number,
  endTimeUnixNano: number,
  attributes: Attributes,
  resource: Attributes,
  events: SpanEventRecord[],
): SpanRecord {
  return { traceId, spanId, parentSpanId, name, kind, startTimeUnixNano, endTimeUnixNano, attributes, resource, events };
}

/** Builds a SpanEventRecord with the canonical property order. */
export function makeEvent(name: string, timeUnixNano: number, attributes: Attributes): SpanEventRecord {
  return { name, timeUnixNano, attributes };
}

/** Builds a LogEventRecord with the canonical property order. */
export function makeLogEvent(
  traceId: string,
  spanId: string,
  name: string,
  timeUnixNano: number,
  attributes: Attributes,
  resource: Attributes,
): LogEventRecord {
  return { traceId, spanId, name, timeUnixNano, attributes, resource };
}

/**
 * Sets one attribute. A key `__proto__` would otherwise replace the object's prototype instead of becoming
 * a property, so it alone takes the slow path.
 */
export function setAttr(attrs: Attributes, key: string, value: AttrValue): void {
  if (key === '__proto__') Object.defineProperty(attrs, key, { value, enumerable: true, writable: true, configurable: true });
  else attrs[key] = value;
}

/** OTLP span kind names (`SPAN_KIND_CLIENT`, or `CLIENT`, any case) and Jaeger/OpenTracing `span.kind` values. */
const KIND_BY_NAME: Record<string, SpanKind> = {
  SPAN_KIND_UNSPECIFIED: 0,
  UNSPECIFIED: 0,
  SPAN_KIND_INTERNAL: 1,
  INTERNAL: 1,
  SPAN_KIND_SERVER: 2,
  SERVER: 2,
  SPAN_KIND_CLIENT: 3,
  CLIENT: 3,
  SPAN_KIND_PRODUCER: 4,
  PRODUCER: 4,
  SPAN_KIND_CONSUMER: 5,
  CONSUMER: 5,
};

/**
 * A span kind from its number or name. Unknown values become UNSPECIFIED (0): OTLP allows new enum values,
 * and the kind only refines the analysis, so an unknown one must not reject the span.
 */
export function toSpanKind(value: unknown): SpanKind {
  if (typeof value === 'number') return value >= 0 && value <= 5 && Number.isInteger(value) ? (value as SpanKind) : 0;
  if (typeof value === 'string') {
    const k = KIND_BY_NAME[value.toUpperCase()];
    if (k !== undefined) return k;
    if (/^[0-9]+$/.test(value)) return toSpanKind(Number(value));
  }
  return 0;
}
