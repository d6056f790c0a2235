#!/usr/bin/env node
// `npm run demo [-- <scenario>]`: one real deadlock, through the whole pipeline, while you watch.
//
// Starts what is not running yet (scripts/pipeline.sh: Kafka, the Collector, Jaeger, `waitgraph run`;
// scripts/postgres.sh: a throwaway PostgreSQL), starts the scenario's example services, drives them into a
// deadlock over real HTTP, and prints waitgraph's alert from the Kafka alert topic as it arrives, with its
// Jaeger links. Then the scenario's timeout breaks the deadlock: it prints the resolved alert and checks
// that every link's trace opens in Jaeger. Finally it stops what it started (and nothing else).
//
// `--keep` leaves the pipeline running, so the links keep working (scripts/pipeline.sh stop stops it).
// Scenarios: pg-row-locks (the default), pool, sidecar-retry, cert-wait. Runs under tsx (`npm run demo`),
// which lets it import the examples' TypeScript. The first run builds the Collector and Jaeger (minutes);
// later runs start in about 15 s. Ports follow scripts/pipeline.sh's environment variables.
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import pg from 'pg';
import { watchAlerts } from '../examples/lib/alerts.ts';
import { prepareDatabase } from '../examples/lib/database.ts';
import { startServices } from '../examples/lib/stack.ts';
import { SCENARIOS } from '../examples/scenarios/index.ts';

const root = new URL('..', import.meta.url).pathname;
const run = promisify(execFile);
const PARTS = ['waitgraph', 'otelcol', 'jaeger', 'kafka'];
/** The alert must come within this long of the deadlock forming: waitgraph's promise is 5 s. */
const ALERT_BUDGET_MS = 5_000;

const args = process.argv.slice(2);
const keep = args.includes('--keep');
const wanted = args.find((a) => !a.startsWith('--')) ?? 'pg-row-locks';
const scenario = SCENARIOS.find((s) => s.id === wanted);
if (!scenario) {
  console.error(`no scenario "${wanted}"; pick one of: ${SCENARIOS.map((s) => s.id).join(', ')}`);
  process.exit(2);
}

const t0 = Date.now();
const bold = (s) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const say = (line = '') => console.log(line && `${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s  ${line}`);

/** Runs a script with its output going to our stderr; resolves to its stdout. */
function script(name, args) {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [`${root}scripts/${name}`, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`scripts/${name} ${args.join(' ')} failed (exit ${code})`))));
  });
}

async function runningParts() {
  const { stdout } = await run('bash', [`${root}scripts/pipeline.sh`, 'status']);
  return new Set(stdout.split('\n').filter((l) => / running/.test(l)).map((l) => l.split(' ')[0]));
}

async function postgresRunning() {
  try {
    await run('bash', [`${root}scripts/postgres.sh`, 'status']);
    return true;
  } catch {
    return false;
  }
}

const cleanups = [];
let cleaning;
function cleanup() {
  cleaning ??= (async () => {
    for (const fn of cleanups.reverse()) await fn().catch((err) => console.error(`cleanup: ${err.message}`));
  })();
  return cleaning;
}
for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => void cleanup().finally(() => process.exit(130)));

async function main() {
  console.log(bold(`waitgraph demo: ${scenario.title}`));
  for (const line of scenario.story) console.log(`    ${line}`);
  console.log();

  const before = await runningParts();
  const pgBefore = await postgresRunning();
  say('starting the pipeline (scripts/pipeline.sh start) and PostgreSQL (scripts/postgres.sh start)');
  const [pipelineOut, databaseUrl] = await Promise.all([
    script('pipeline.sh', ['start']),
    script('postgres.sh', ['start']).then((out) => out.trim().split('\n').pop()),
  ]);
  const started = PARTS.filter((p) => !before.has(p));
  if (started.length && !keep) cleanups.push(() => script('pipeline.sh', ['stop', ...started]));
  if (!pgBefore && !keep) cleanups.push(() => script('postgres.sh', ['stop']));
  const endpoints = Object.fromEntries(pipelineOut.trim().split('\n').map((l) => l.split('=')));

  await prepareDatabase(databaseUrl);
  const watch = await watchAlerts({ brokers: [endpoints.WAITGRAPH_KAFKA_BOOTSTRAP], topic: endpoints.WAITGRAPH_ALERT_TOPIC });
  cleanups.push(() => watch.stop());
  say(`starting ${scenario.services.map((s) => s.name).join(', ')} (OTLP to the Collector at ${endpoints.WAITGRAPH_OTLP_ENDPOINT})`);
  const stack = await startServices(scenario.services, { otlpEndpoint: endpoints.WAITGRAPH_OTLP_ENDPOINT, databaseUrl });
  cleanups.push(() => stack.stop());
  const db = new pg.Pool({ connectionString: databaseUrl, max: 2 });
  cleanups.push(() => db.end());

  say(bold('driving the deadlock'));
  const deadlock = await scenario.deadlock({ urls: stack.urls, db, log: (l) => say(l) });
  say(bold('deadlocked') + ' (the driver sees it); waiting for waitgraph on the alert topic');
  const ours = (a) => a.finding.kind === 'deadlock' && a.finding.services.some((s) => scenario.expected.services.includes(s));
  const opened = await watch.next((a) => a.change === 'opened' && ours(a), 30_000);
  const { finding } = opened.alert;
  const lag = opened.receivedAt - Math.min(deadlock.formedAt, Date.parse(finding.formedAt));
  say(bold(`ALERT opened`) + ` ${lag} ms after the deadlock formed${lag <= ALERT_BUDGET_MS ? '' : ` (over the ${ALERT_BUDGET_MS} ms budget)`}`);
  console.log(`\n    ${bold(finding.summary)}`);
  for (const line of finding.chain) console.log(`      ${line}`);
  console.log(`\n    Jaeger links (${finding.links.length}):`);
  for (const link of finding.links) console.log(`      ${link.url}`);
  console.log();

  say('waiting for the timeout to break it');
  const answers = await deadlock.settled;
  for (const [name, r] of Object.entries(answers)) say(`  ${name}: ${r.status} ${JSON.stringify(r.body).slice(0, 140)}`);
  const resolved = await watch.next((a) => a.change === 'resolved' && a.fingerprint === opened.alert.fingerprint, 30_000);
  const r = resolved.alert.finding;
  say(bold('ALERT resolved') + `: broken by ${r.brokenBy?.event} in ${r.brokenBy?.task.service} after ${r.durationMs} ms`);

  say('checking that every link opens in Jaeger, now that the spans have ended');
  const jaeger = endpoints.WAITGRAPH_JAEGER_URL;
  for (const link of finding.links) {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const res = await fetch(`${jaeger}/api/traces/${link.traceId}`);
      const spans = res.ok ? ((await res.json()).data?.[0]?.spans ?? []) : [];
      const span = spans.find((s) => s.spanID === link.spanId && !s.tags.some((t) => t.key === 'span.partial'));
      if (span) break;
      if (Date.now() > deadline) throw new Error(`Jaeger has no ended span ${link.spanId} in trace ${link.traceId}`);
      await new Promise((res) => setTimeout(res, 200));
    }
  }
  say(`all ${finding.links.length} links open in Jaeger: try ${finding.links[0]?.url}`);
  if (keep || started.length === 0) say('the pipeline stays up: scripts/pipeline.sh stop (and scripts/postgres.sh stop) stop it');
}

try {
  await main();
  await cleanup();
} catch (err) {
  console.error(`\ndemo failed: ${err.message}`);
  await cleanup();
  process.exit(1);
}
