/**
 * OpenTelemetry for the example services, set up the way the README tells users to: the Node SDK, an
 * OTLP/HTTP (protobuf) exporter to the Collector, a batch processor for ended spans, and waitgraph's
 * snapshot processor next to it, so spans that hang are seen while they hang. Outgoing http and fetch
 * calls get `rpc.wait`/`rpc.done` from waitgraph's hook configs.
 *
 * Assumes it runs first in the process: `startTelemetry()` must be called before any module that serves
 * or calls HTTP is imported (examples/run.ts does this), so the http instrumentation patches node:http.
 * The exporter's endpoint comes from the standard `OTEL_EXPORTER_OTLP_ENDPOINT` (default
 * http://localhost:4318).
 */
import { createRequire } from 'node:module';
import type { SpanProcessor } from '@opentelemetry/sdk-trace';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';
import { NodeSDK } from '@opentelemetry/sdk-node';
import type { SpanExporter } from '@opentelemetry/sdk-trace';
import { waitgraphHttpConfig, waitgraphSnapshots, waitgraphUndiciConfig } from 'waitgraph/instrumentation';
import { HopSnapshotSpanProcessor } from './hop-snapshots.js';

/** Paths of incoming requests that get no span. */
const UNTRACED = /^\/healthz(\?|$)|\/status(\?|$)/;

/** Options of `startTelemetry`. */
export interface TelemetryOptions {
  /** `service.name` of every span. */
  serviceName: string;
  /**
   * `proxy`: a sidecar proxy, which records no wait events: no http/fetch instrumentation (the proxy makes
   * its own spans) and, instead of waitgraph's snapshots, snapshots of every span in flight (see
   * hop-snapshots.ts). Default `service`.
   */
  role?: 'service' | 'proxy';
  /**
   * How long ended spans wait in the batch processor. Default 200 ms: the SDK's 5 s default would delay the
   * resolved alert, which needs the ended spans, by up to 5 s.
   */
  batchDelayMillis?: number;
}

/** The running SDK. */
export interface Telemetry {
  /** Flushes every span and stops the SDK. Idempotent. */
  shutdown(): Promise<void>;
}

/** Starts the Node SDK for one example service. */
export function startTelemetry(options: TelemetryOptions): Telemetry {
  const role = options.role ?? 'service';
  const exporter: SpanExporter = new OTLPTraceExporter();
  const processors: SpanProcessor[] = [
    new BatchSpanProcessor({ exporter, scheduledDelayMillis: options.batchDelayMillis ?? 200 }),
    role === 'proxy' ? new HopSnapshotSpanProcessor(exporter) : waitgraphSnapshots(exporter),
  ];
  const sdk = new NodeSDK({
    serviceName: options.serviceName,
    spanProcessors: processors,
    instrumentations:
      role === 'proxy'
        ? []
        : [
            // health checks and gauges are polled: traces of them would only bury the requests that matter
            new HttpInstrumentation(waitgraphHttpConfig({ ignoreIncomingRequestHook: (req) => UNTRACED.test(req.url ?? '') })),
            // CLIENT spans named after the call, not just its method, so chains in alerts say what was called
            new UndiciInstrumentation(waitgraphUndiciConfig({ requestHook: (span, req) => span.updateName(`${req.method} ${req.path.split('?')[0]}`) })),
          ],
    // traces only: the examples export no metrics or logs, so nothing else claims an endpoint
    logRecordProcessors: [],
    metricReaders: [],
  });
  sdk.start();
  // The http instrumentation patches node:http when it is first required; requiring it here, right after
  // start, patches the one module object that every later `import http from 'node:http'` gets.
  createRequire(import.meta.url)('node:http');
  let stopped: Promise<void> | undefined;
  return { shutdown: () => (stopped ??= sdk.shutdown()) };
}
