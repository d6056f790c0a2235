/**
 * A real OpenTelemetry SDK for instrumentation tests: a TracerProvider with an in-memory exporter behind
 * a SimpleSpanProcessor (ended spans) and waitgraph's snapshot processor (snapshots of running spans),
 * the AsyncLocalStorage context manager, all registered globally. Each test file runs in its own process.
 */
import { context, trace, type Attributes, type Span, type Tracer } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider, type ReadableSpan } from '@opentelemetry/sdk-trace';
import { waitgraphSnapshots, type WaitSnapshotOptions } from '../../../instrumentation/index.js';

/** What a test gets from `startTracing`. */
export interface Tracing {
  exporter: InMemorySpanExporter;
  provider: TracerProvider;
  tracer: Tracer;
  /** Ended spans exported so far. */
  ended(): ReadableSpan[];
  /** Snapshots exported so far. */
  snapshots(): ReadableSpan[];
  shutdown(): Promise<void>;
}

/** Starts and registers the SDK. */
export function startTracing(snapshotOptions?: WaitSnapshotOptions): Tracing {
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({
    spanProcessors: [new SimpleSpanProcessor({ exporter }), waitgraphSnapshots(exporter, snapshotOptions)],
  });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(provider);
  return {
    exporter,
    provider,
    tracer: provider.getTracer('test'),
    ended: () => exporter.getFinishedSpans().filter((s) => s.ended),
    snapshots: () => exporter.getFinishedSpans().filter((s) => !s.ended),
    shutdown: () => provider.shutdown(),
  };
}

/** A wait event as a test compares it: its name and attributes. */
export interface Ev {
  name: string;
  attributes: Attributes;
}

/** The events of a span, as name and attributes. */
export function events(span: ReadableSpan): Ev[] {
  return span.events.map((e) => ({ name: e.name, attributes: { ...e.attributes } }));
}

/** The event names of a span. */
export function names(span: ReadableSpan): string[] {
  return span.events.map((e) => e.name);
}

/** The ended span named `name` (exactly one). */
export function endedSpan(tracing: Tracing, name: string): ReadableSpan {
  const found = tracing.ended().filter((s) => s.name === name);
  if (found.length !== 1) throw new Error(`expected one ended span "${name}", found ${found.length}`);
  return found[0]!;
}

/** Runs `fn` in a new active span named `name`, ending it when `fn` settles. */
export function inSpan<T>(tracer: Tracer, name: string, fn: (span: Span) => Promise<T>): Promise<T> {
  return tracer.startActiveSpan(name, async (span) => {
    try {
      return await fn(span);
    } finally {
      span.end();
    }
  });
}

/** Unix milliseconds of an HrTime. */
export function ms(time: [number, number]): number {
  return time[0] * 1e3 + time[1] / 1e6;
}

/** Resolves after `millis`. */
export function sleep(millis: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, millis));
}
