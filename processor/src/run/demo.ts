/**
 * `waitgraph run --demo`: the processor with its embedded defaults, fed one recorded incident over real
 * OTLP/HTTP, as an OpenTelemetry exporter would send it; it prints the alert and exits.
 *
 * The incident is the bundled scenario 1 (two services locking rows of one database in opposite orders,
 * through RPCs), moved in time so that it happened a moment ago. The demo listens on a free port unless
 * `--port` is given, and writes no alert file unless `--alert-file` is given, so it never disturbs a real
 * processor or its record of open deadlocks.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Alert } from '../../../schemas/index.js';
import { WaitgraphError } from '../errors.js';
import type { RunLogger } from './logger.js';
import type { ResolvedRunOptions } from './options.js';
import { WaitgraphProcessor } from './processor.js';
import type { AlertSink } from './sinks.js';

/** The bundled incident: scenario 1 of the fixtures, OTLP JSON. */
export const DEMO_INCIDENT = new URL('../../../test/fixtures/scenarios/01-cross-service-ab-ba.json', import.meta.url);

/** How long the demo waits for its alert. */
const DEMO_TIMEOUT_MS = 15_000;

const TIME_KEYS = new Set(['startTimeUnixNano', 'endTimeUnixNano', 'timeUnixNano']);

/** The OTLP JSON document with every non-zero time moved so that the latest one is `nowNs`. */
export function retimed(doc: unknown, nowNs: bigint): unknown {
  let latest = 0n;
  const walk = (v: unknown, f: (key: string, t: bigint) => unknown): unknown => {
    if (Array.isArray(v)) return v.map((x) => walk(x, f));
    if (v === null || typeof v !== 'object') return v;
    return Object.fromEntries(
      Object.entries(v).map(([k, x]) => [k, TIME_KEYS.has(k) && typeof x === 'string' && x !== '0' ? f(k, BigInt(x)) : walk(x, f)]),
    );
  };
  walk(doc, (_k, t) => {
    if (t > latest) latest = t;
    return t;
  });
  const shift = nowNs - latest;
  return walk(doc, (_k, t) => String(t + shift));
}

/** Options of `runDemo`. */
export interface DemoContext {
  logger: RunLogger;
  stdout: (s: string) => void;
  color: boolean;
}

/** Runs the demo; resolves to the exit code: 0 when the alert came. */
export async function runDemo(options: ResolvedRunOptions, ctx: DemoContext): Promise<number> {
  let alerted!: (a: Alert) => void;
  const first = new Promise<Alert>((ok) => (alerted = ok));
  const watch: AlertSink = {
    name: 'demo',
    start: async () => {},
    publish: async (alerts) => {
      const opened = alerts.find((a) => a.change === 'opened');
      if (opened) alerted(opened);
    },
    shutdown: async () => {},
  };
  const processor = new WaitgraphProcessor(options, { logger: ctx.logger, stdout: ctx.stdout, color: ctx.color, extraSinks: [watch] });
  try {
    const { url } = await processor.start();
    await processor.warmedUp();
    const incident = fileURLToPath(DEMO_INCIDENT);
    ctx.stdout(
      `waitgraph demo: a processor listens on ${url}; an OTLP client posts a recorded incident to ${url}/v1/traces\n` +
        `(two services lock rows of orders-db in opposite orders through RPCs: ${incident.slice(incident.lastIndexOf('test/'))})\n\n`,
    );
    const body = JSON.stringify(retimed(JSON.parse(readFileSync(DEMO_INCIDENT, 'utf8')), BigInt(Date.now()) * 1_000_000n));
    const res = await fetch(`${url}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    if (!res.ok) throw new WaitgraphError('internal', `demo: the receiver answered ${res.status}: ${await res.text()}`);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((ok) => (timer = setTimeout(() => ok(undefined), DEMO_TIMEOUT_MS)));
    const alert = await Promise.race([first, timeout]);
    clearTimeout(timer);
    if (!alert) {
      ctx.stdout(`waitgraph demo: no alert within ${DEMO_TIMEOUT_MS / 1000} s: something is wrong; run with --log-level debug\n`);
      return 1;
    }
    ctx.stdout(
      `The alert above is what 'waitgraph run' publishes, ${alert.detectionLatencyMs ?? 0} ms after the spans came in.\n` +
        `Run the processor for real with 'npm start' and point an OpenTelemetry SDK or Collector (otlphttp) at\n` +
        `http://127.0.0.1:4318; alerts go to stdout and ./waitgraph-alerts.jsonl, /metrics and /healthz are beside.\n`,
    );
    return 0;
  } finally {
    await processor.shutdown('demo done');
  }
}
