/**
 * Builds SpanRecords by hand for engine unit tests: tiny graphs, readable in the test itself.
 * Ids are derived from names, times are milliseconds from a fixed base.
 */
import { createHash } from 'node:crypto';
import type { Attributes, SpanRecord } from '../../processor/src/model/span.js';
import { SpanKind } from '../../processor/src/model/span.js';

const BASE = 1_763_700_000_000; // ms

/** Nanoseconds at `ms` milliseconds after the base time. */
export function at(ms: number): number {
  return (BASE + ms) * 1e6;
}

function hex(s: string, len: number): string {
  return createHash('sha256').update(s).digest('hex').slice(0, len);
}

/** One event: [ms, name, attributes]. */
export type Ev = [number, string, Attributes?];

/** What a span is made of. */
export interface SpanSpec {
  service: string;
  name: string;
  trace?: string;
  parent?: SpanRecord;
  kind?: number;
  start?: number;
  /** ms; omitted: open (a partial snapshot). */
  end?: number;
  attrs?: Attributes;
  events?: Ev[];
  instance?: string;
}

/** Makes one span. */
export function span(spec: SpanSpec): SpanRecord {
  const trace = spec.parent?.traceId ?? hex('trace:' + (spec.trace ?? spec.name), 32);
  const open = spec.end === undefined;
  return {
    traceId: trace,
    spanId: hex(`span:${trace}:${spec.service}:${spec.name}`, 16),
    parentSpanId: spec.parent?.spanId,
    name: spec.name,
    kind: (spec.kind ?? SpanKind.INTERNAL) as SpanRecord['kind'],
    startTimeUnixNano: at(spec.start ?? 0),
    endTimeUnixNano: open ? 0 : at(spec.end!),
    attributes: { ...(spec.attrs ?? {}), ...(open ? { 'span.partial': true } : {}) },
    resource: { 'service.name': spec.service, ...(spec.instance ? { 'service.instance.id': spec.instance } : {}) },
    events: (spec.events ?? []).map(([ms, name, attributes]) => ({ name, timeUnixNano: at(ms), attributes: attributes ?? {} })),
  };
}

/** A lock event's attributes. */
export const lock = (id: string, mode?: 'shared' | 'exclusive', kind?: string): Attributes => ({
  'lock.id': id,
  ...(mode ? { 'lock.mode': mode } : {}),
  ...(kind ? { 'lock.kind': kind } : {}),
});

/** A pool event's attributes. */
export const pool = (name: string, size?: number): Attributes => ({ 'pool.name': name, ...(size ? { 'pool.size': size } : {}) });
