/**
 * Scenario fixtures as live input for `waitgraph run`: the OTLP JSON of a recorded incident, moved to the
 * present (the staleness rule distrusts old snapshots only by when they were observed, but alerts show
 * when a deadlock formed), split into spans, changed (a wait that times out), and encoded as OTLP protobuf
 * ExportTraceServiceRequests, the bytes the Collector's kafka exporter writes (`otlp_proto`) and an
 * OTLP/HTTP exporter posts.
 */
import { readFileSync } from 'node:fs';
import { retimed } from '../../processor/src/run/demo.js';
import { kv, ld, message, str, vfield, fixed64, double, hex, type Bytes } from '../decode/proto-writer.js';

/** OTLP JSON AnyValue, as the fixtures write it. */
type AnyValue = { stringValue?: string; intValue?: string; doubleValue?: number; boolValue?: boolean; arrayValue?: { values?: AnyValue[] } };
interface KeyValue {
  key: string;
  value: AnyValue;
}
/** One OTLP JSON span. */
export interface JsonSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind?: number;
  startTimeUnixNano: string;
  endTimeUnixNano?: string;
  attributes?: KeyValue[];
  events?: { timeUnixNano: string; name: string; attributes?: KeyValue[] }[];
}
/** One span with its resource and scope: the unit the tests send alone or in batches. */
export interface FixtureSpan {
  resource: KeyValue[];
  scope: string;
  span: JsonSpan;
}

/** The spans of a scenario fixture, its times moved so the latest is now. */
export function scenarioSpans(file: string, nowMs = Date.now()): FixtureSpan[] {
  const doc = JSON.parse(readFileSync(new URL(`../fixtures/scenarios/${file}`, import.meta.url), 'utf8'));
  const moved = retimed(doc, BigInt(nowMs) * 1_000_000n) as {
    resourceSpans: { resource: { attributes: KeyValue[] }; scopeSpans: { scope?: { name?: string }; spans: JsonSpan[] }[] }[];
  };
  return moved.resourceSpans.flatMap((rs) =>
    rs.scopeSpans.flatMap((ss) => ss.spans.map((span) => ({ resource: rs.resource.attributes, scope: ss.scope?.name ?? '', span }))),
  );
}

/** The span with this id; throws if there is none. */
export function spanById(spans: FixtureSpan[], spanId: string): FixtureSpan {
  const s = spans.find((x) => x.span.spanId === spanId);
  if (!s) throw new Error(`no span ${spanId} in the fixture`);
  return s;
}

/** The span after its open wait timed out at `atMs`: a `<kind>.timeout` event, and the span ended in error. */
export function timedOut(s: FixtureSpan, atMs: number): FixtureSpan {
  const ns = String(BigInt(atMs) * 1_000_000n);
  const wait = [...(s.span.events ?? [])].reverse().find((e) => e.name.endsWith('.wait'));
  if (!wait) throw new Error(`span ${s.span.spanId} has no wait`);
  const timeout = { timeUnixNano: ns, name: wait.name.replace(/\.wait$/, '.timeout'), attributes: wait.attributes ?? [] };
  return {
    ...s,
    span: {
      ...s.span,
      endTimeUnixNano: ns,
      attributes: (s.span.attributes ?? []).filter((a) => a.key !== 'span.partial'),
      events: [...(s.span.events ?? []), timeout],
    },
  };
}

function anyValue(v: AnyValue): Bytes {
  if (v.stringValue !== undefined) return str(1, v.stringValue);
  if (v.boolValue !== undefined) return vfield(2, v.boolValue ? 1 : 0);
  if (v.intValue !== undefined) return vfield(3, BigInt(v.intValue));
  if (v.doubleValue !== undefined) return double(4, v.doubleValue);
  if (v.arrayValue !== undefined) return ld(5, ...(v.arrayValue.values ?? []).map((x) => ld(1, anyValue(x))));
  throw new Error(`unsupported AnyValue ${JSON.stringify(v)}`);
}

function attrs(field: number, list: KeyValue[] | undefined): Bytes[] {
  return (list ?? []).map((a) => ld(field, kv(a.key, anyValue(a.value))));
}

function span(s: JsonSpan): Bytes {
  return [
    ...ld(1, hex(s.traceId)),
    ...ld(2, hex(s.spanId)),
    ...(s.parentSpanId ? ld(4, hex(s.parentSpanId)) : []),
    ...str(5, s.name),
    ...vfield(6, s.kind ?? 1),
    ...fixed64(7, BigInt(s.startTimeUnixNano)),
    ...fixed64(8, BigInt(s.endTimeUnixNano ?? '0')),
    ...attrs(9, s.attributes).flat(),
    ...(s.events ?? []).flatMap((e) => ld(11, fixed64(1, BigInt(e.timeUnixNano)), str(2, e.name), ...attrs(3, e.attributes))),
  ];
}

/** An OTLP protobuf ExportTraceServiceRequest of the spans (one ResourceSpans per span, as the exporter may write). */
export function tracesProto(spans: readonly FixtureSpan[]): Buffer {
  const resourceSpans = spans.map((s) => ld(1, ld(1, ...attrs(1, s.resource)), ld(2, ld(1, str(1, s.scope)), ld(2, span(s.span)))));
  return Buffer.from(message(...resourceSpans));
}

/** The OTLP JSON ExportTraceServiceRequest of the spans. */
export function tracesJson(spans: readonly FixtureSpan[]): string {
  return JSON.stringify({
    resourceSpans: spans.map((s) => ({ resource: { attributes: s.resource }, scopeSpans: [{ scope: { name: s.scope }, spans: [s.span] }] })),
  });
}
