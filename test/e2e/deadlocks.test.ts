/**
 * End to end, as a user deploys it: scripts/pipeline.sh starts Kafka, the OpenTelemetry Collector, Jaeger
 * and `waitgraph run` on loopback (on free ports, in this test run's directory), PostgreSQL runs beside
 * them, and the nine example services (examples/) run as real processes that export OTLP to the Collector.
 *
 * For each of the four scenarios, first driven one request at a time (no deadlock: no alert may come),
 * then driven into a real deadlock over real HTTP:
 *   - the `opened` alert arrives on the Kafka alert topic within 5 s of the deadlock forming, and names the
 *     scenario's services and resources;
 *   - the `resolved` alert follows once the scenario's timeout breaks it;
 *   - every Jaeger link of the alert opens in Jaeger's HTTP API, with the ended span it points to;
 *   - Jaeger holds no partial-span snapshot (they are for waitgraph only).
 * Last, `scripts/pipeline.sh stop` stops everything it started.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { watchAlerts, type AlertWatch, type ReceivedAlert } from '../../examples/lib/alerts.js';
import { prepareDatabase, type PgLockWait } from '../../examples/lib/database.js';
import { startServices, type Stack } from '../../examples/lib/stack.js';
import { PG_SQLSTATES, SCENARIOS, type DeadlockRun, type Scenario } from '../../examples/scenarios/index.js';
import type { CallResult } from '../../examples/lib/http-service.js';
import { ATTR, EVENT, type Alert } from '../../schemas/index.js';
import { fetchTrace, waitForTrace, type JaegerTrace } from '../support/jaeger.js';
import { freePorts, SERVER_START_TIMEOUT_MS } from '../support/servers.js';
import { ensurePostgres } from '../support/postgres.js';
import { schemaErrors, validateAlert } from '../support/schemas.js';

const exec = promisify(execFile);
const PIPELINE = new URL('../../scripts/pipeline.sh', import.meta.url).pathname;

/** waitgraph's promise: the alert within 5 s of the deadlock forming. */
const ALERT_BUDGET_MS = 5_000;
/** How long a calm run is watched for alerts after its last request: detection takes about a second. */
const QUIET_MS = 4_000;
/** Each scenario's deadlock is broken by a 6 s timeout, give or take the moment its wait began. */
const BROKEN_AFTER_MS = { min: 4_000, max: 10_000 };

let env: NodeJS.ProcessEnv;
let endpoints: Record<string, string>;
let db: pg.Pool;
let databaseUrl: string;
let stack: Stack;
let watch: AlertWatch;
/** What a scenario's deadlocked run gave. */
interface Observed {
  run: DeadlockRun;
  opened: ReceivedAlert;
  resolved: ReceivedAlert;
  answers: Record<string, CallResult>;
}
/** What each scenario's deadlocked run gave, for the Jaeger checks. */
const observed = new Map<string, Observed>();

async function pipeline(command: string, ...args: string[]): Promise<string> {
  const { stdout } = await exec('bash', [PIPELINE, command, ...args], { env, timeout: SERVER_START_TIMEOUT_MS, maxBuffer: 8 << 20 });
  return stdout;
}

beforeAll(async () => {
  const runDir = process.env.WAITGRAPH_TEST_RUN_DIR!;
  const [kafka, controller, otlpGrpc, otlpHttp, ui, jaegerGrpc, jaegerHttp, waitgraph] = await freePorts(8);
  env = {
    ...process.env,
    // pid files in the run directory: the harness stops whatever a failed test leaves behind
    WAITGRAPH_RUN_DIR: join(runDir, 'e2e'),
    WAITGRAPH_KAFKA_PORT: String(kafka),
    WAITGRAPH_KAFKA_CONTROLLER_PORT: String(controller),
    WAITGRAPH_KAFKA_DATA_DIR: join(runDir, 'e2e-kafka'),
    WAITGRAPH_KAFKA_PID_FILE: join(runDir, 'e2e-kafka.pid'),
    WAITGRAPH_OTELCOL_GRPC_PORT: String(otlpGrpc),
    WAITGRAPH_OTELCOL_HTTP_PORT: String(otlpHttp),
    WAITGRAPH_JAEGER_UI_PORT: String(ui),
    WAITGRAPH_JAEGER_OTLP_GRPC_PORT: String(jaegerGrpc),
    WAITGRAPH_JAEGER_OTLP_HTTP_PORT: String(jaegerHttp),
    WAITGRAPH_JAEGER_OTHER_PORTS: 'ephemeral',
    WAITGRAPH_PORT: String(waitgraph),
  };
  const [started, server] = await Promise.all([pipeline('start'), ensurePostgres()]);
  // the pipeline keeps its pid files in its own directory; copies where the harness looks make sure that
  // a run that dies early stops them too
  for (const part of ['otelcol', 'jaeger', 'waitgraph']) {
    copyFileSync(join(env.WAITGRAPH_RUN_DIR!, `${part}.pid`), join(runDir, `e2e-${part}.pid`));
  }
  endpoints = Object.fromEntries(started.trim().split('\n').map((l) => l.split('=') as [string, string]));
  databaseUrl = server.connectionString;
  await prepareDatabase(databaseUrl);
  db = new pg.Pool({ connectionString: databaseUrl, max: 2 });
  watch = await watchAlerts({ brokers: [endpoints.WAITGRAPH_KAFKA_BOOTSTRAP!], topic: endpoints.WAITGRAPH_ALERT_TOPIC });
  stack = await startServices(
    SCENARIOS.flatMap((s) => s.services),
    { otlpEndpoint: endpoints.WAITGRAPH_OTLP_ENDPOINT!, databaseUrl, pidDir: runDir },
  );
}, SERVER_START_TIMEOUT_MS);

afterAll(async () => {
  await stack?.stop();
  await watch?.stop();
  await db?.end();
  // idempotent: already done by the last test, unless a filter skipped it
  if (env) await pipeline('stop');
});

/** How many wait events `waitgraph run` has taken in so far, from its /metrics. */
async function waitEventsReceived(): Promise<number> {
  const res = await fetch(endpoints.WAITGRAPH_HEALTH_URL!.replace(/\/healthz$/, '/metrics'));
  const text = await res.text();
  let n = 0;
  for (const m of text.matchAll(/^waitgraph_wait_events_received_total(?:\{[^}]*\})? (\d+(?:\.\d+)?)$/gm)) n += Number(m[1]);
  return n;
}

/** What to show when an alert does not come: the driver's lines, the logs of the Collector and waitgraph, the services'. */
function diagnostics(log: string[]): string {
  const tail = (file: string) => {
    try {
      return readFileSync(join(env.WAITGRAPH_RUN_DIR!, file), 'utf8').split('\n').slice(-15).join('\n');
    } catch (err) {
      return String(err);
    }
  };
  return [
    `driver:\n${log.join('\n')}`,
    `otelcol.log:\n${tail('otelcol.log')}`,
    `waitgraph.log:\n${tail('waitgraph.log')}`,
    ...stack.services.map((s) => `${s.name}:\n${s.output().slice(-1500)}`),
  ].join('\n\n');
}

/** Alerts about a scenario's services (exactly those: other scenarios run on the same pipeline). */
function about(scenario: Scenario, since: number): ReceivedAlert[] {
  return watch.alerts.filter((a) => a.producedAt >= since && a.alert.finding.services.some((s) => scenario.expected.services.includes(s)));
}

const ctx = (log: string[]) => ({ urls: stack.urls, db, log: (l: string) => log.push(l) });

describe.each(SCENARIOS.map((s) => [s.id, s] as const))('%s', (_id, scenario) => {
  it('driven one request at a time: every request succeeds and no alert comes', async () => {
    const since = Date.now();
    const eventsBefore = await waitEventsReceived();
    const answers = await scenario.calm(ctx([]));
    for (const [name, r] of Object.entries(answers)) expect(r.ok, `${name}: ${r.status} ${JSON.stringify(r.body)}`).toBe(true);
    await new Promise((r) => setTimeout(r, QUIET_MS));
    // waitgraph did see the run's waits and holds (so no alert means no deadlock, not no data)
    expect(await waitEventsReceived()).toBeGreaterThan(eventsBefore);
    expect(about(scenario, since).map((a) => `${a.alert.change}: ${a.alert.finding.summary}`)).toEqual([]);
  });

  it('deadlocked: the alert within 5 s names its services and resources; the resolved alert follows the timeout', async () => {
    const since = Date.now();
    const log: string[] = [];
    const run = await scenario.deadlock(ctx(log));
    const ours = (a: Alert) => a.finding.kind === 'deadlock' && a.finding.services.some((s) => scenario.expected.services.includes(s));
    const opened = await watch.next((a) => a.change === 'opened' && ours(a), 15_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${diagnostics(log)}`);
    });

    // on time: measured from the earliest sign of the deadlock, the driver's or the spans'
    const { finding } = opened.alert;
    const formed = Math.min(run.formedAt, Date.parse(finding.formedAt!));
    expect(Date.parse(finding.formedAt!)).toBeGreaterThanOrEqual(since - 1000);
    expect(opened.receivedAt - formed, `alert ${opened.receivedAt - formed} ms after the deadlock formed`).toBeLessThanOrEqual(ALERT_BUDGET_MS);
    console.log(`[e2e] ${scenario.id}: alert ${opened.receivedAt - formed} ms after the deadlock formed (${opened.alert.detectionLatencyMs} ms in the processor)`);

    // what it says
    expect(validateAlert(opened.alert), schemaErrors(validateAlert)).toBe(true);
    expect(finding.state).toBe('active');
    expect(finding.services).toEqual(scenario.expected.services);
    expect(finding.resources).toEqual(scenario.expected.resources);
    expect(finding.links.length).toBeGreaterThan(0);
    // a line of the chain for every wait of every task of the core
    expect(finding.chain.length).toBe(finding.tasks.reduce((n, t) => n + t.waitsFor.length, 0));
    for (const t of finding.tasks) expect(t.waitsFor.length, `${t.key} waits for nothing`).toBeGreaterThan(0);

    // broken by the scenario's timeout, and announced so
    const answers = await run.settled;
    const settledAt = Date.now();
    const resolved = await watch.next((a) => a.change === 'resolved' && a.fingerprint === opened.alert.fingerprint, 15_000);
    expect(validateAlert(resolved.alert), schemaErrors(validateAlert)).toBe(true);
    expect(resolved.receivedAt - settledAt).toBeLessThanOrEqual(ALERT_BUDGET_MS);
    const r = resolved.alert.finding;
    expect(r.state).toBe('resolved');
    expect(r.durationMs).toBeGreaterThanOrEqual(BROKEN_AFTER_MS.min);
    expect(r.durationMs).toBeLessThanOrEqual(BROKEN_AFTER_MS.max);
    console.log(`[e2e] ${scenario.id}: resolved ${resolved.receivedAt - settledAt} ms after the requests settled, broken by ${r.brokenBy?.event} after ${r.durationMs} ms`);
    // one deadlock, one pair of alerts
    expect(about(scenario, since).map((a) => a.alert.change)).toEqual(['opened', 'resolved']);
    observed.set(scenario.id, { run, opened, resolved, answers });
  });

  it("every Jaeger link opens in Jaeger's HTTP API once the spans have ended, and Jaeger holds no snapshots", async () => {
    const seen = observed.get(scenario.id);
    expect(seen, 'the deadlocked run of this scenario failed').toBeDefined();
    const links = [...seen!.opened.alert.finding.links, ...seen!.resolved.alert.finding.links];
    const jaeger = endpoints.WAITGRAPH_JAEGER_URL!;
    const traces = new Map<string, JaegerTrace>();
    for (const link of links) {
      expect(link.url).toBe(`${jaeger}/trace/${link.traceId}?uiFind=${link.spanId}`);
      const t = await waitForTrace(jaeger, link.traceId, { timeoutMs: 10_000, complete: (x) => x.spans.some((s) => s.spanID === link.spanId) });
      traces.set(link.traceId, t);
    }
    // fetched again once every span is in: none is a snapshot, and each span id is there once
    for (const traceId of traces.keys()) {
      const t = (await fetchTrace(jaeger, traceId))!;
      expect(t.spans.filter((s) => s.tags.some((tag) => tag.key === ATTR.SPAN_PARTIAL))).toEqual([]);
      expect(new Set(t.spans.map((s) => s.spanID)).size).toBe(t.spans.length);
      traces.set(traceId, t);
    }
    checkScenario(scenario, seen!, [...traces.values()]);
  });
});

/** What only one scenario shows. */
function checkScenario(scenario: Scenario, { run, answers, opened }: Observed, traces: JaegerTrace[]): void {
  const spans = traces.flatMap((t) => t.spans);
  const tag = (s: (typeof spans)[number], key: string) => s.tags.find((t) => t.key === key)?.value;
  switch (scenario.id) {
    case 'pg-row-locks': {
      // PostgreSQL's own view: two waits, each for a transaction that waits for its client, not for a
      // lock, so no cycle for its deadlock detector; the deadlock ends in a lock timeout, never in 40P01
      const waits = run.evidence.pgLockWaits as PgLockWait[];
      expect(waits.map((w) => `${w.service} waits on ${w.relation}`).sort()).toEqual(['billing waits on invoices', 'orders waits on orders']);
      for (const w of waits) expect(w.blockers.map((b) => [b.state, b.waitingForLock])).toEqual([['idle in transaction', false]]);
      expect(run.evidence.pgCycle).toBe(false);
      expect(answers.checkout!.status).toBe(200);
      expect(answers.close!.status).toBe(502);
      expect(JSON.stringify(answers)).toContain(`"sqlstate":"${PG_SQLSTATES.lockTimeout}"`);
      expect(JSON.stringify(answers)).not.toContain(PG_SQLSTATES.deadlock);
      break;
    }
    case 'pool':
      expect(answers.refresh).toMatchObject({ status: 503, body: { reason: 'pool-timeout' } });
      for (const item of [1, 2, 3, 4]) expect(answers[`reserve ${item}`]!.status).toBe(200);
      break;
    case 'sidecar-retry': {
      // the sidecar's spans in Jaeger: hops marked as such, a first attempt that timed out, and its retry
      const egress = spans.filter((s) => s.operationName.startsWith('egress ') && tag(s, ATTR.COMPONENT) === 'proxy');
      expect(egress.map((s) => tag(s, ATTR.HTTP_RESEND_COUNT) ?? 0).sort()).toEqual([0, 1]);
      expect(answers.checkout!.status).toBe(200);
      expect(answers.apply).toMatchObject({ status: 503, body: { sqlstate: PG_SQLSTATES.lockTimeout } });
      break;
    }
    case 'cert-wait': {
      // the rotation waits for the certificate itself, not only for its call to the control plane
      const certWaits = opened.alert.finding.tasks.flatMap((t) => t.waitsFor.filter((w) => w.kind === 'cert').map((w) => `${t.service} ${w.resource}`));
      expect(certWaits).toEqual(['dataplane spiffe://examples/dataplane/dp-1']);
      const rotate = spans.find((s) => s.operationName === 'POST /cert/rotate')!;
      const events = rotate.logs.map((l) => l.fields.find((f) => f.key === 'event')?.value);
      expect(events).toEqual(expect.arrayContaining([EVENT.CERT_WAIT, EVENT.CERT_READY]));
      expect(answers.rotate!.status).toBe(200);
      break;
    }
    default:
      throw new Error(`no checks for scenario ${scenario.id}`);
  }
}

describe('scripts/pipeline.sh', () => {
  it('stops everything it started', async () => {
    await stack.stop();
    await watch.stop();
    await pipeline('stop');
    const status = await pipeline('status');
    expect(status.trim().split('\n').sort()).toEqual(['jaeger stopped', 'kafka stopped', 'otelcol stopped', 'waitgraph stopped']);
  });
});
