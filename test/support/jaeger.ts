/**
 * A real Jaeger for the tests: `ensureJaeger()` starts one Jaeger (in-memory storage) per test run with
 * scripts/jaeger.sh, building it first if the cache is cold, and shares it between the test files, which
 * vitest runs in separate worker processes. Its listeners take free ports on 127.0.0.1, so test runs
 * side by side never clash. Its pid file lives in $WAITGRAPH_TEST_RUN_DIR, so the global teardown stops it.
 *
 * Also `fetchTrace()`/`waitForTrace()`, which read Jaeger's HTTP API the way the Jaeger UI does.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { freePorts, runScript, sharedServer } from './servers.js';

/** A Jaeger started for this test run. */
export interface TestJaeger {
  /** `http://127.0.0.1:<port>`: the UI and the HTTP API (`/api/services`, `/api/traces/<id>`). */
  url: string;
  /** `127.0.0.1:<port>`: the OTLP/gRPC receiver, where the Collector exports spans. */
  otlpGrpcEndpoint: string;
  /** `http://127.0.0.1:<port>`: the OTLP/HTTP receiver. */
  otlpHttpUrl: string;
}

interface JaegerState {
  uiPort: number;
  otlpGrpcPort: number;
  otlpHttpPort: number;
}

let inProcess: Promise<TestJaeger> | undefined;

/** Starts this run's Jaeger, or joins the one another test file started. Builds it first if needed. */
export function ensureJaeger(): Promise<TestJaeger> {
  inProcess ??= sharedServer<JaegerState>('jaeger', async () => {
    const [uiPort, otlpGrpcPort, otlpHttpPort] = await freePorts(3);
    const state = { uiPort, otlpGrpcPort, otlpHttpPort };
    await runScript('jaeger.sh', 'start', {
      WAITGRAPH_JAEGER_UI_PORT: String(uiPort),
      WAITGRAPH_JAEGER_OTLP_GRPC_PORT: String(otlpGrpcPort),
      WAITGRAPH_JAEGER_OTLP_HTTP_PORT: String(otlpHttpPort),
      WAITGRAPH_JAEGER_OTHER_PORTS: 'ephemeral',
    });
    return state;
  }).then((s) => ({
    url: `http://127.0.0.1:${s.uiPort}`,
    otlpGrpcEndpoint: `127.0.0.1:${s.otlpGrpcPort}`,
    otlpHttpUrl: `http://127.0.0.1:${s.otlpHttpPort}`,
  }));
  inProcess.catch(() => (inProcess = undefined));
  return inProcess;
}

/** A span as Jaeger's HTTP API returns it. */
export interface JaegerSpan {
  traceID: string;
  spanID: string;
  operationName: string;
  /** Key into the trace's `processes`, which names the service. */
  processID: string;
  references: { refType: string; traceID: string; spanID: string }[];
  /** Microseconds since the epoch. */
  startTime: number;
  /** Microseconds. */
  duration: number;
  tags: { key: string; type: string; value: unknown }[];
  logs: { timestamp: number; fields: { key: string; type: string; value: unknown }[] }[];
}

/** A trace as Jaeger's HTTP API returns it. */
export interface JaegerTrace {
  traceID: string;
  spans: JaegerSpan[];
  processes: Record<string, { serviceName: string; tags: { key: string; value: unknown }[] }>;
}

/**
 * Fetches a trace from Jaeger's HTTP API, as the UI does: undefined while Jaeger does not have it.
 * `traceId` is 32 hex digits.
 */
export async function fetchTrace(jaegerUrl: string, traceId: string): Promise<JaegerTrace | undefined> {
  const res = await fetch(`${jaegerUrl}/api/traces/${traceId}`);
  if (res.status === 404) return undefined;
  if (!res.ok) throw new Error(`GET ${jaegerUrl}/api/traces/${traceId}: HTTP ${res.status} ${await res.text()}`);
  const body = (await res.json()) as { data: JaegerTrace[] | null };
  return body.data?.[0];
}

/** The service that emitted a span of a Jaeger trace. */
export function serviceOf(trace: JaegerTrace, span: JaegerSpan): string | undefined {
  return trace.processes[span.processID]?.serviceName;
}

/**
 * Polls Jaeger until the trace is there and `complete(trace)` holds (default: any span), then returns it.
 * Spans reach Jaeger through the Collector's batch processor and exporter queue, so this takes a moment.
 */
export async function waitForTrace(
  jaegerUrl: string,
  traceId: string,
  options: { timeoutMs?: number; complete?: (trace: JaegerTrace) => boolean } = {},
): Promise<JaegerTrace> {
  const { timeoutMs = 10_000, complete = () => true } = options;
  const deadline = Date.now() + timeoutMs;
  let last: JaegerTrace | undefined;
  for (;;) {
    last = await fetchTrace(jaegerUrl, traceId);
    if (last && complete(last)) return last;
    if (Date.now() > deadline) {
      const seen = last ? `${last.spans.length} span(s): ${last.spans.map((s) => s.operationName).join(', ')}` : 'nothing';
      throw new Error(`waitForTrace: trace ${traceId} not complete in Jaeger after ${timeoutMs} ms (saw ${seen})`);
    }
    await sleep(100);
  }
}
