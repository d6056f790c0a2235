/**
 * Real OTLP payloads for the adapter tests: spans and log records made by the OpenTelemetry JS SDK and
 * serialized by its own OTLP serializers, exactly as an SDK exporter (or a Collector) would send them.
 */
import { context, trace, TraceFlags } from '@opentelemetry/api';
import { JsonLogsSerializer, JsonTraceSerializer, ProtobufLogsSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { InMemoryLogRecordExporter, LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider, type ReadableSpan } from '@opentelemetry/sdk-trace';
import { ATTR, EVENT } from '../../schemas/index.js';

/** Spans of one trace made by the SDK: `count` spans, each with a `lock.wait` event on its own lock. */
export async function makeSpans(count: number, service = 'checkout'): Promise<ReadableSpan[]> {
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ [ATTR.SERVICE_NAME]: service }),
    spanProcessors: [new SimpleSpanProcessor({ exporter })],
  });
  const tracer = provider.getTracer('waitgraph-test');
  // The first span is the root; the others are its children, so all share one trace id.
  let parent = context.active();
  for (let i = 0; i < count; i++) {
    const span = tracer.startSpan(`work ${i}`, {}, parent);
    if (i === 0) parent = trace.setSpan(parent, span);
    span.addEvent(EVENT.LOCK_WAIT, { [ATTR.LOCK_ID]: `orders/${i}` });
    span.end();
  }
  await provider.forceFlush();
  const spans = exporter.getFinishedSpans();
  await provider.shutdown();
  return spans;
}

/** An ExportTraceServiceRequest in protobuf. */
export function tracesProto(spans: ReadableSpan[]): Uint8Array {
  return ProtobufTraceSerializer.serializeRequest(spans)!;
}

/** An ExportTraceServiceRequest in OTLP JSON. */
export function tracesJson(spans: ReadableSpan[]): Uint8Array {
  return JsonTraceSerializer.serializeRequest(spans)!;
}

/** An ExportLogsServiceRequest with one wait event as a log record (OTEP 4430), in protobuf or JSON. */
export async function waitEventLog(encoding: 'proto' | 'json'): Promise<Uint8Array> {
  const exporter = new InMemoryLogRecordExporter();
  const provider = new LoggerProvider({
    resource: resourceFromAttributes({ [ATTR.SERVICE_NAME]: 'checkout' }),
    processors: [new SimpleLogRecordProcessor({ exporter })],
  });
  // A wait event names the span it belongs to: emit it in that span's context.
  const span = trace.setSpanContext(context.active(), {
    traceId: '5b8efff798038103d269b633813fc60c',
    spanId: 'eee19b7ec3c1b174',
    traceFlags: TraceFlags.SAMPLED,
  });
  provider.getLogger('waitgraph-test').emit({ eventName: EVENT.LOCK_WAIT, attributes: { [ATTR.LOCK_ID]: 'orders/1' }, context: span });
  await provider.forceFlush();
  const records = exporter.getFinishedLogRecords();
  await provider.shutdown();
  return (encoding === 'proto' ? ProtobufLogsSerializer : JsonLogsSerializer).serializeRequest(records)!;
}
