/**
 * An ESM application: it enables AsyncMutexInstrumentation, then imports async-mutex with `import` (the
 * package's ESM build), contends for a mutex in two spans, and prints the spans' event names as JSON.
 * Run by esm.test.ts with the import-in-the-middle hook registered (register.mjs).
 */
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { AsyncMutexInstrumentation } from '../../../instrumentation/index.js';

const exporter = new InMemorySpanExporter();
const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
trace.setGlobalTracerProvider(provider);
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
registerInstrumentations({ instrumentations: [new AsyncMutexInstrumentation()] });

const { Mutex } = await import('async-mutex');
const tracer = trace.getTracer('esm-app');
const mutex = new Mutex();
const hold = (name: string, millis: number) =>
  tracer.startActiveSpan(name, async (span) => {
    await mutex.runExclusive(() => new Promise((ok) => setTimeout(ok, millis)));
    span.end();
  });
await Promise.all([hold('first', 30), hold('second', 0)]);
const out = Object.fromEntries(exporter.getFinishedSpans().map((s) => [s.name, s.events.map((e) => e.name)]));
process.stdout.write(JSON.stringify(out) + '\n');
