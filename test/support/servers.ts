/**
 * The servers of the test run, whatever they are (Kafka, PostgreSQL, the Collector, Jaeger): started once
 * per run across vitest's worker processes (`sharedServer()`: a lock file taken with O_EXCL, a state file
 * published by rename), through the repository's scripts (`runScript()`, which puts their pid files where
 * the global teardown finds them), on ports free on 127.0.0.1 (`freePorts()`).
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
