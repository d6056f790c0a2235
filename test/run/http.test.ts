/**
 * `waitgraph run` without Kafka, as a newcomer meets it: `npm start` (the OTLP/HTTP receiver on localhost,
 * alerts on stdout and in a JSON-lines file), `npm start -- --demo`, the staleness rule, and a restart
 * after SIGKILL that neither repeats nor forgets an open deadlock. Every processor is a real child process.
 */
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Alert } from '../../schemas/index.js';
import { waitFor } from '../io/kafka-helpers.js';
import { schemaErrors, validateAlert } from '../support/schemas.js';
import { scenarioSpans, tracesJson, tracesProto, type FixtureSpan } from './otlp-fixtures.js';
import { every, post, ROOT, startProcessor, stopProcessor, waitReady, type RunningProcessor } from './processes.js';

const running: RunningProcessor[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => stopProcessor(p, 2000)));
});

async function start(args: string[], options: Parameters<typeof startProcessor>[1] = {}): Promise<RunningProcessor> {
  const p = await startProcessor(args, options);
  running.push(p);
  return p;
}

function alertsIn(file: string): Alert[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Alert);
}

function expectValid(alert: Alert): void {
  expect(validateAlert(alert), schemaErrors(validateAlert)).toBe(true);
}

const tmp = () => mkdtempSync(join(tmpdir(), 'waitgraph-run-'));

/** Scenario 1's two sides: the orders trace (request 1) and the billing trace (request 2). */
function sides(spans: FixtureSpan[]): [FixtureSpan[], FixtureSpan[]] {
  const orders = spans.filter((s) => s.span.traceId === spans[0]!.span.traceId);
  return [orders, spans.filter((s) => !orders.includes(s))];
}

describe('waitgraph run over OTLP/HTTP', () => {
  it('npm start: takes OTLP/HTTP, prints the alert, writes it to the JSON-lines file, serves /metrics and /healthz', async () => {
    const file = join(tmp(), 'alerts.jsonl');
    const p = await start(['--port', '0'], { via: 'npm', env: { WAITGRAPH_ALERT_FILE: file } });
    const banner = p.logs().find((l) => l.message.includes('listening on'))!;
    expect(banner).toMatchObject({ level: 'info', kafka: 'off', alerts: [`file:${file}`, 'stdout'] });
    expect(p.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    await waitReady(p);
    expect(await (await fetch(`${p.url}/healthz`)).json()).toEqual({ status: 'ok', phase: 'running' });

    // A malformed export is refused with a 400 and counted; the next one is taken.
    expect(await post(p, '/v1/traces', new Uint8Array([0x0a, 0xff, 0xff]), 'application/x-protobuf')).toBe(400);
    expect(await p.metric('waitgraph_bad_input_total{reason="decode"}')).toBe(1);
    expect(await post(p, '/v1/traces', tracesProto(scenarioSpans('01-cross-service-ab-ba.json')), 'application/x-protobuf')).toBe(200);

    await waitFor('the alert on stdout', () => p.stdout().includes('DEADLOCK OPENED'), 10_000);
    const out = p.stdout();
    expect(out).toContain('Deadlock: 4 tasks of billing, orders wait on each other over orders-db/invoices/7, orders-db/orders/42');
    expect(out).toContain('waits for exclusive lock "orders-db/orders/42"');
    expect(out).toMatch(/http:\/\/localhost:16686\/trace\/9a1b6c8d7ad92c6605cbb83dad9138ff\?uiFind=[0-9a-f]{16}/);

    await waitFor('the alert in the file', () => alertsIn(file).length === 1, 5000);
    const [alert] = alertsIn(file);
    expectValid(alert!);
    expect(alert).toMatchObject({ schemaVersion: 1, change: 'opened', finding: { kind: 'deadlock', state: 'active', services: ['billing', 'orders'] } });
    expect(alert!.fingerprint).toBe(alert!.finding.fingerprint);
    expect(alert!.detectionLatencyMs).toBeGreaterThanOrEqual(0);
    expect(out).toContain(alert!.fingerprint);

    expect(await p.metric('waitgraph_spans_received_total')).toBe(6);
    expect(await p.metric('waitgraph_wait_events_received_total')).toBe(6);
    expect(await p.metric('waitgraph_findings_total{kind="deadlock",state="active"}')).toBe(1);
    expect(await p.metric('waitgraph_detection_latency_seconds_count')).toBe(1);
    // The graph gauges are refreshed once a second.
    await waitFor('the graph gauge', async () => (await p.metric('waitgraph_graph_tasks')) === 4, 3000);

    // npm passes SIGTERM on to the processor, which stops gracefully.
    await stopProcessor(p);
    await waitFor('the processor to stop', () => p.logs().some((l) => l.message === 'stopped'), 5000);
  });

  it('by default writes ./waitgraph-alerts.jsonl in its working directory; --json prints the same alert as a JSON line', async () => {
    const dir = tmp();
    const p = await start(['--port', '0', '--json'], { cwd: dir });
    await waitReady(p);
    expect(await post(p, '/v1/traces', tracesJson(scenarioSpans('09-session-lock-ring.json')), 'application/json')).toBe(200);
    const file = join(dir, 'waitgraph-alerts.jsonl');
    await waitFor('the alert in the default file', () => alertsIn(file).length === 1, 10_000);
    await waitFor('the alert on stdout', () => p.stdout().endsWith('\n'), 5000);
    const printed = JSON.parse(p.stdout().trim()) as Alert;
    expectValid(printed);
    expect(printed).toEqual(alertsIn(file)[0]);
    expect(printed.finding.tasks).toHaveLength(8);
    expect(await stopProcessor(p)).toBe(0);
    expect(p.logs().map((l) => l.message)).toEqual(expect.arrayContaining(['shutting down', 'stopped']));
  });

  it('npm start -- --demo posts the bundled incident to itself, prints the alert with its chain and links, and exits 0', async () => {
    const defaultFile = join(ROOT, 'waitgraph-alerts.jsonl');
    const before = existsSync(defaultFile) ? statSync(defaultFile).mtimeMs : undefined;
    const p = await start(['--demo'], { via: 'npm', waitForBanner: false });
    expect(await p.exited).toBe(0);
    const out = p.stdout();
    expect(out).toMatch(/^waitgraph demo: a processor listens on http:\/\/127\.0\.0\.1:\d+/);
    expect(out).toContain('DEADLOCK OPENED');
    expect(out).toContain('┌─▶ billing:44');
    expect(out).toContain('Task orders/orders-6f7c9d4b8-x2k8p:31 waits for its call into billing');
    expect(out).toContain('http://localhost:16686/trace/d6ef5657ee4d35f9d30fb273ca3b52b5?uiFind=');
    expect(out).toContain("npm start");
    // The demo keeps no record: a later `npm start` must not think the demo's deadlock is open.
    expect(existsSync(defaultFile) ? statSync(defaultFile).mtimeMs : undefined).toBe(before);
    expect(p.logs().filter((l) => l.level === 'error')).toEqual([]);
  });

  it('does not trust a span whose snapshots stopped: no alert until its emitter is alive again, resolved when all go quiet', async () => {
    const file = join(tmp(), 'alerts.jsonl');
    const p = await start(['--port', '0', '--alert-file', file, '--stale-after', '1s', '--detect-interval', '100ms']);
    await waitReady(p);
    const [orders, billing] = sides(scenarioSpans('01-cross-service-ab-ba.json'));
    // The orders side sends one snapshot and dies; a second later the billing side closes the cycle.
    expect(await post(p, '/v1/traces', tracesProto(orders), 'application/x-protobuf')).toBe(200);
    await new Promise((ok) => setTimeout(ok, 1500));
    const stopBilling = every(200, () => post(p, '/v1/traces', tracesProto(billing), 'application/x-protobuf'));
    await new Promise((ok) => setTimeout(ok, 2000));
    expect(alertsIn(file)).toEqual([]);
    expect(p.stdout()).toBe('');

    // The orders emitter comes back: now the cycle is trusted.
    const stopOrders = every(200, () => post(p, '/v1/traces', tracesProto(orders), 'application/x-protobuf'));
    await waitFor('the opened alert', () => alertsIn(file).length === 1, 5000);
    expect(alertsIn(file)[0]!.change).toBe('opened');

    // Both go quiet: the deadlock is no longer trusted, and that is said once.
    await Promise.all([stopOrders(), stopBilling()]);
    await waitFor('the resolved alert', () => alertsIn(file).length === 2, 5000);
    const resolved = alertsIn(file)[1]!;
    expectValid(resolved);
    expect(resolved).toMatchObject({ change: 'resolved', fingerprint: alertsIn(file)[0]!.fingerprint, finding: { state: 'resolved', brokenBy: { event: 'span.stale' } } });
    await new Promise((ok) => setTimeout(ok, 1000));
    expect(alertsIn(file)).toHaveLength(2);
  });

  it('after SIGKILL and restart, keeps an open deadlock without announcing it again, and resolves it once it is gone', async () => {
    const file = join(tmp(), 'alerts.jsonl');
    const args = ['--port', '0', '--alert-file', file, '--stale-after', '2s', '--detect-interval', '100ms'];
    const spans = scenarioSpans('01-cross-service-ab-ba.json');
    let target = await start(args);
    const stopEmitter = every(300, () => post(target, '/v1/traces', tracesProto(spans), 'application/x-protobuf'));
    await waitFor('the opened alert', () => alertsIn(file).length === 1, 10_000);
    const opened = alertsIn(file)[0]!;

    // Killed and started again while the deadlock is still there: the emitter goes on sending to the new one.
    target.kill('SIGKILL');
    expect(await target.exited).toBe('SIGKILL');
    target = await start(args);
    expect(target.logs().find((l) => l.message.includes('listening on'))).toMatchObject({ openDeadlocks: 1 });
    expect((await fetch(`${target.url}/healthz`)).status).toBe(503);
    await waitReady(target, 10_000);
    await new Promise((ok) => setTimeout(ok, 1500));
    expect(alertsIn(file)).toEqual([opened]);
    expect(target.stdout()).toBe('');

    // Killed again, and the deadlock's services go away while nobody watches: the next start says it is over.
    target.kill('SIGKILL');
    await target.exited;
    await stopEmitter();
    target = await start(args);
    await waitFor('the resolved alert', () => alertsIn(file).length === 2, 10_000);
    const resolved = alertsIn(file)[1]!;
    expectValid(resolved);
    expect(resolved).toMatchObject({ change: 'resolved', fingerprint: opened.fingerprint, finding: { formedAt: opened.finding.formedAt, brokenBy: { event: 'span.stale' } } });
    expect(target.stdout()).toContain('DEADLOCK RESOLVED');
    expect(await stopProcessor(target)).toBe(0);
  });
  it('forgets spans older than --history, shows it in /metrics, and does not announce a lock-order inversion again', async () => {
    const file = join(tmp(), 'alerts.jsonl');
    const p = await start(['--port', '0', '--alert-file', file, '--stale-after', '1s', '--history', '1s', '--detect-interval', '100ms']);
    await waitReady(p);
    const spans = scenarioSpans('11-lock-order-inversion.json');
    expect(spans.every((s) => s.span.endTimeUnixNano !== undefined)).toBe(true);
    expect(await post(p, '/v1/traces', tracesProto(spans), 'application/x-protobuf')).toBe(200);
    await waitFor('the potential-deadlock alert', () => alertsIn(file).length === 1, 5000);
    expect(alertsIn(file)[0]).toMatchObject({ change: 'potential', finding: { kind: 'potential-deadlock' } });
    // A second after they ended, every span is forgotten and the graph is empty.
    await waitFor('the spans forgotten', async () => (await p.metric('waitgraph_spans_forgotten_total')) === spans.length, 5000);
    await waitFor('the graph gauge', async () => (await p.metric('waitgraph_graph_spans')) === 0, 3000);
    expect(await p.metric('waitgraph_graph_tasks')).toBe(0);
    // The same history sent again is new to the graph, but its inversion was announced already.
    expect(await post(p, '/v1/traces', tracesProto(spans), 'application/x-protobuf')).toBe(200);
    await waitFor('the spans forgotten again', async () => (await p.metric('waitgraph_spans_forgotten_total')) === 2 * spans.length, 5000);
    expect(alertsIn(file)).toHaveLength(1);
    expect(await stopProcessor(p)).toBe(0);
  });
});
