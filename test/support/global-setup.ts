/**
 * Global set-up for the test run. Servers that integration tests need (Kafka, PostgreSQL, the Collector,
 * Jaeger) are started on demand by their `ensure...()` helpers in test/support/, which record each process
 * they start as a pid file in the run directory named by WAITGRAPH_TEST_RUN_DIR. At the end of the run,
 * every process recorded there is stopped, so no server outlives the suite.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { alive, signalGroup } from '../../scripts/lib/processes.js';

export function setup(): void {
  const dir = mkdtempSync(join(tmpdir(), 'waitgraph-test-run-'));
  process.env.WAITGRAPH_TEST_RUN_DIR = dir;
}

export async function teardown(): Promise<void> {
  const dir = process.env.WAITGRAPH_TEST_RUN_DIR;
  if (!dir) return;
  const pids: number[] = [];
  for (const f of readdirSync(dir)) {
    if (!f.endsWith('.pid')) continue;
    const pid = Number(readFileSync(join(dir, f), 'utf8').trim());
    if (pid > 0) pids.push(pid);
  }
  for (const pid of pids) signalGroup(pid, 'SIGTERM');
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline && pids.some(alive)) await new Promise((r) => setTimeout(r, 200));
  for (const pid of pids) if (alive(pid)) signalGroup(pid, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
