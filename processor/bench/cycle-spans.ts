/**
 * A two-task lock cycle (AB-BA) as OTLP protobuf, one message per span, for the Kafka benchmark and the
 * scale-out tests: task 1 of service `<prefix>-a` holds lock `<prefix>/A` and waits for `<prefix>/B`; task 1
 * of `<prefix>-b` holds B and waits for A. Both spans are open partial snapshots (`span.partial = true`),
 * as the instrumentation exports a blocked span. The second span closes the cycle.
 */
import { SpanKind, SpanStatusCode, TraceFlags, type HrTime } from '@opentelemetry/api';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { createHash } from 'node:crypto';
import { ATTR, EVENT } from '../../schemas/index.js';
import { decodeOtlpTracesProto } from '../src/decode/index.js';
import { Detector } from '../src/engine/index.js';

/** One cycle: the two messages, in the order to send them, and the fingerprint the detector gives it. */
export interface LockCycle {
  /** The span that opens the cycle (A holds, waits for B), then the one that closes it. */
  messages: [Uint8Array, Uint8Array];
  /** The deadlock's fingerprint. */
  fingerprint: string;
  /** The two lock ids. */
  locks: [string, string];
}

function hex(seed: string, len: number): string {
  return createHash('sha256').update(seed).digest('hex').slice(0, len);
}

function hr(ms: number): HrTime {
  return [Math.floor(ms / 1000), Math.round((ms % 1000) * 1e6)];
}

function openSpan(service: string, name: string, startMs: number, holds: string, waits: string): ReadableSpan {
  const traceId = hex(`trace:${service}`, 32);
  const spanId = hex(`span:${service}`, 16);
  const ctx = { traceId, spanId, traceFlags: TraceFlags.SAMPLED };
  return {
    name,
    kind: SpanKind.SERVER,
    spanContext: () => ctx,
    parentSpanContext: undefined,
    startTime: hr(startMs),
    endTime: [0, 0],
    status: { code: SpanStatusCode.UNSET },
    attributes: { [ATTR.TASK_ID]: 't1', [ATTR.SPAN_PARTIAL]: true },
    links: [],
    events: [
      { name: EVENT.LOCK_ACQUIRE, time: hr(startMs + 1), attributes: { [ATTR.LOCK_ID]: holds } },
      { name: EVENT.LOCK_WAIT, time: hr(startMs + 2), attributes: { [ATTR.LOCK_ID]: waits } },
    ],
    duration: [0, 0],
    ended: false,
    resource: resourceFromAttributes({ [ATTR.SERVICE_NAME]: service }),
    instrumentationScope: { name: 'waitgraph-bench' },
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
  };
}

/** Builds the cycle named `prefix`, started at `startMs` (unix ms). */
export function lockCycle(prefix: string, startMs = Date.now()): LockCycle {
  const a = `${prefix}/A`;
  const b = `${prefix}/B`;
  const spans = [openSpan(`${prefix}-a`, 'transfer', startMs, a, b), openSpan(`${prefix}-b`, 'transfer', startMs + 3, b, a)];
  const messages = spans.map((s) => ProtobufTraceSerializer.serializeRequest([s])!) as [Uint8Array, Uint8Array];
  const d = new Detector();
  for (const m of messages) d.addBatch(decodeOtlpTracesProto(m));
  const opened = d.detect().filter((c) => c.change === 'opened');
  if (opened.length !== 1) throw new Error(`lockCycle: the detector found ${opened.length} deadlocks in ${prefix}, not 1`);
  return { messages, fingerprint: opened[0]!.finding.fingerprint, locks: [a, b] };
}
