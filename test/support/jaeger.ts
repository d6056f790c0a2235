/**
 * A real Jaeger for the tests: `ensureJaeger()` starts one Jaeger (in-memory storage) per test run with
 * scripts/jaeger.sh, building it first if the cache is cold, and shares it between the test files, which
 * vitest runs in separate worker processes. Its listeners take free ports on 127.0.0.1, so test runs
 * side by side never clash. Its pid file lives in $WAITGRAPH_TEST_RUN_DIR, so the global teardown stops it.
 *
 * Also home of `sharedServer()`, the once-per-run protocol (a lock file taken with O_EXCL, a state file
 * published by rename) that test/support/otelcol.ts uses too, and `fetchTrace()`/`waitForTrace()`, which
 * read Jaeger's HTTP API the way the Jaeger UI does.
 */
import { execFile } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * How long a test waits for a server to be built and started. A cold build of the Collector or of Jaeger
 * on a 2-core machine takes minutes; a warm start takes about a second.
 */
export const SERVER_START_TIMEOUT_MS = 1_500_000;

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

/**
 * Runs `start` once per test run across all vitest workers and returns the state it produced. The first
 * caller takes `<name>.start-lock` in $WAITGRAPH_TEST_RUN_DIR (O_EXCL, so exactly one wins), starts the
 * server and publishes `<name>.json`; every other caller waits for that file, or for `<name>.error`.
 */
export async function sharedServer<S>(name: string, start: () => Promise<S>): Promise<S> {
  const dir = process.env.WAITGRAPH_TEST_RUN_DIR;
  if (!dir) throw new Error(`${name}: WAITGRAPH_TEST_RUN_DIR is not set (run the tests with vitest, which sets it)`);
  const stateFile = join(dir, `${name}.json`);
  const errorFile = join(dir, `${name}.error`);
  let starter = false;
  try {
    closeSync(openSync(join(dir, `${name}.start-lock`), 'wx'));
    starter = true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  if (starter) {
    let state: S;
    try {
      state = await start();
    } catch (err) {
      writeFileSync(errorFile, String((err as Error).message));
      throw err;
    }
    // Written whole, then renamed: a waiting process never reads half a file.
    writeFileSync(`${stateFile}.tmp`, JSON.stringify(state));
    renameSync(`${stateFile}.tmp`, stateFile);
    return state;
  }
  const deadline = Date.now() + SERVER_START_TIMEOUT_MS;
  while (!existsSync(stateFile)) {
    if (existsSync(errorFile)) throw new Error(`${name} failed to start in another test file: ${readFileSync(errorFile, 'utf8')}`);
    if (Date.now() > deadline) throw new Error(`${name}: not started after ${SERVER_START_TIMEOUT_MS / 1000} s`);
    await sleep(200);
  }
  return JSON.parse(readFileSync(stateFile, 'utf8')) as S;
}

/**
 * Runs `scripts/<script> <command>` with the run directory as WAITGRAPH_RUN_DIR (so the server's pid file
 * lands where the global teardown looks) plus `env`; returns its stderr, which is where it reports.
 */
export async function runScript(script: string, command: string, env: Record<string, string>): Promise<string> {
  const path = resolve(fileURLToPath(new URL(`../../scripts/${script}`, import.meta.url)));
  const runDir = process.env.WAITGRAPH_TEST_RUN_DIR;
  if (!runDir) throw new Error(`${script}: WAITGRAPH_TEST_RUN_DIR is not set`);
  try {
    const { stderr } = await run('bash', [path, command], {
      env: { ...process.env, WAITGRAPH_RUN_DIR: runDir, ...env },
      timeout: SERVER_START_TIMEOUT_MS,
      maxBuffer: 16 * 1024 * 1024,
    });
    return stderr;
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`scripts/${script} ${command} failed: ${e.stderr?.trim() || e.message}`);
  }
}

/** `n` distinct ports that were free on 127.0.0.1 a moment ago. */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () => {
      const server = createServer();
      return new Promise<ReturnType<typeof createServer>>((ok, fail) => {
        server.once('error', fail);
        server.listen(0, '127.0.0.1', () => ok(server));
      });
    }),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((ok) => s.close(ok))));
  return ports;
}

function sleep(ms: number): Promise<void> {
  return new Promise((ok) => setTimeout(ok, ms));
}
