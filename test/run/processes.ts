/**
 * `waitgraph run` as a child process, the way users run it: `node bin/waitgraph.js run ...` (or
 * `npm start -- ...`), with its stdout (alerts) and stderr (JSON log lines) collected. Each child's pid is
 * recorded in $WAITGRAPH_TEST_RUN_DIR, so the run's teardown stops any a failed test left behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from '../io/kafka-helpers.js';

/** The repository root. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** One log record of the processor (stderr, JSON). */
export interface LogRecord {
  time: string;
  level: string;
  message: string;
  [field: string]: unknown;
}

/** A running `waitgraph run`. */
export interface RunningProcessor {
  child: ChildProcess;
  /** Everything written to stdout so far. */
  stdout(): string;
  /** Every JSON log line on stderr so far. */
  logs(): LogRecord[];
  /** Every line on stderr that is not JSON. */
  otherStderr(): string[];
  /** `http://127.0.0.1:<port>`, from the startup banner. */
  url: string;
  /** Resolves with the exit code (or the signal's name) when the process exits. */
  exited: Promise<number | string>;
  /** Sends a signal to its process group. */
  kill(signal: NodeJS.Signals): void;
  /** The value of a Prometheus sample, e.g. `waitgraph_bad_input_total{reason="decode"}`; 0 if absent. */
  metric(sample: string): Promise<number>;
}

/** Options of `startProcessor`. */
export interface StartOptions {
  /** The command: `waitgraph` (node bin/waitgraph.js) or `npm` (npm start --). Default `waitgraph`. */
  via?: 'waitgraph' | 'npm';
  cwd?: string;
  env?: Record<string, string>;
  /** Wait for the banner (the receiver listens). Default true. */
  waitForBanner?: boolean;
}

/** Starts `waitgraph run <args>`; resolves once its receiver listens. */
export async function startProcessor(args: string[], options: StartOptions = {}): Promise<RunningProcessor> {
  const [cmd, argv] =
    options.via === 'npm' ? ['npm', ['start', '--silent', '--', ...args]] : [process.execPath, [join(ROOT, 'bin/waitgraph.js'), 'run', ...args]];
  const child = spawn(cmd, argv, {
    cwd: options.cwd ?? ROOT,
    env: { ...process.env, NO_COLOR: '1', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group, signalled as a whole, as a terminal does: npm does not pass signals on.
    detached: true,
  });
  const pidFile = join(process.env.WAITGRAPH_TEST_RUN_DIR!, `waitgraph-run-${child.pid}.pid`);
  writeFileSync(pidFile, String(child.pid));
  let out = '';
  let errText = '';
  const logs: LogRecord[] = [];
  const other: string[] = [];
  child.stdout!.on('data', (d: Buffer) => (out += d.toString('utf8')));
  child.stderr!.on('data', (d: Buffer) => {
    errText += d.toString('utf8');
    let nl;
    while ((nl = errText.indexOf('\n')) >= 0) {
      const line = errText.slice(0, nl);
      errText = errText.slice(nl + 1);
      try {
        logs.push(JSON.parse(line) as LogRecord);
      } catch {
        if (line.trim()) other.push(line);
      }
    }
  });
  const exited = new Promise<number | string>((ok) =>
    child.once('exit', (code, signal) => {
      rmSync(pidFile, { force: true });
      ok(code ?? signal ?? -1);
    }),
  );
  let exitedEarly: number | string | undefined;
  void exited.then((c) => (exitedEarly = c));
  const running: RunningProcessor = {
    child,
    stdout: () => out,
    logs: () => logs,
    otherStderr: () => other,
    url: '',
    exited,
    kill: (signal) => {
      try {
        process.kill(-child.pid!, signal);
      } catch {}
    },
    metric: async (sample) => {
      const text = await (await fetch(`${running.url}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith(sample + ' '));
      return line ? Number(line.slice(sample.length + 1)) : 0;
    },
  };
  if (options.waitForBanner ?? true) {
    await waitFor(
      'the startup banner',
      () => {
        if (exitedEarly !== undefined) throw new Error(`waitgraph run exited (${exitedEarly}) before listening:\n${other.join('\n')}\n${JSON.stringify(logs)}`);
        return logs.some((l) => l.message.includes(' listening on '));
      },
      60_000,
    );
    running.url = /listening on (\S+)/.exec(logs.find((l) => l.message.includes(' listening on '))!.message)![1]!;
  }
  return running;
}

/** Waits until `/healthz` answers 200 (warm-up over). */
export async function waitReady(p: RunningProcessor, timeoutMs = 60_000): Promise<void> {
  await waitFor('/healthz 200', async () => (await fetch(`${p.url}/healthz`)).status === 200, timeoutMs);
}

/** Stops a processor: SIGTERM, and SIGKILL if it is still there after `graceMs`. Resolves with its exit. */
export async function stopProcessor(p: RunningProcessor, graceMs = 15_000): Promise<number | string> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return p.exited;
  p.kill('SIGTERM');
  const timer = setTimeout(() => p.kill('SIGKILL'), graceMs);
  const code = await p.exited;
  clearTimeout(timer);
  return code;
}

/** Posts an OTLP request to the processor's receiver; resolves with the status. */
export async function post(p: RunningProcessor, path: '/v1/traces' | '/v1/logs', body: Uint8Array | string, contentType: 'application/x-protobuf' | 'application/json'): Promise<number> {
  const res = await fetch(`${p.url}${path}`, { method: 'POST', headers: { 'content-type': contentType }, body });
  await res.arrayBuffer();
  return res.status;
}

/** Calls `send` now and then every `everyMs` until the returned stop function is called: a live emitter. */
export function every(everyMs: number, send: () => Promise<unknown>): () => Promise<void> {
  let stopped = false;
  // A failed send is a lost snapshot, as with a real emitter: the next one makes up for it.
  const safe = () => send().catch(() => {});
  let current: Promise<unknown> = safe();
  const timer = setInterval(() => {
    if (!stopped) current = current.then(safe);
  }, everyMs);
  return async () => {
    stopped = true;
    clearInterval(timer);
    await current;
  };
}
