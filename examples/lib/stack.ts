/**
 * Starts example services as real processes (`node --import tsx examples/run.ts <service>`), each in its
 * own process group, on ports picked up front so that services can be told each other's URLs. Used by the
 * end-to-end test and by `npm run demo`.
 *
 * A service is ready when it prints its ready line; one that exits first fails the start with its
 * output. When `pidDir` is given, each process's pid is written there as `example-<service>.pid` (the test
 * harness stops every process recorded in its run directory, even if a test dies before `stop()`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { alive, signalGroup } from '../../scripts/lib/processes.js';
import type { ServiceName } from '../services/index.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const RUN_TS = fileURLToPath(new URL('../run.ts', import.meta.url));

/** One service to start. */
export interface ServiceSpec {
  name: ServiceName;
  /** Its environment, given every service's URL (services may call each other) and the database's. */
  env: (urls: Record<string, string>, databaseUrl: string) => Record<string, string>;
}

/** Options of `startServices`. */
export interface StackOptions {
  /** Where the services send OTLP: the Collector's OTLP/HTTP base URL (`http://127.0.0.1:<port>`). */
  otlpEndpoint: string;
  /** The examples' PostgreSQL database (`postgres://...`), for the services that use one. */
  databaseUrl: string;
  /** A directory for pid files. Default: none. */
  pidDir?: string;
  /** How long a service may take to start. Default 60 s. */
  startTimeoutMs?: number;
}

/** A running service process. */
export interface ServiceProcess {
  name: string;
  url: string;
  pid: number;
  /** What it printed on stdout and stderr. */
  output(): string;
}

/** Running services. */
export interface Stack {
  /** Service name → base URL. */
  urls: Record<string, string>;
  services: ServiceProcess[];
  /** Stops every service (SIGTERM, which flushes their spans; SIGKILL after 10 s). Idempotent. */
  stop(): Promise<void>;
}

/** `n` distinct ports that were free on 127.0.0.1 a moment ago. */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const s = createServer();
          s.once('error', reject);
          s.listen(0, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  // the services' telemetry is configured here alone, not by whatever OTEL_* the caller happens to have
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('OTEL_')) env[k] = v;
  return { ...env, ...extra };
}

function signalChild(child: ChildProcess, sig: NodeJS.Signals): void {
  if (child.pid !== undefined) signalGroup(child.pid, sig);
}

/** Starts the services and waits until every one is ready. */
export async function startServices(specs: ServiceSpec[], options: StackOptions): Promise<Stack> {
  const ports = await freePorts(specs.length);
  const urls: Record<string, string> = {};
  specs.forEach((s, i) => (urls[s.name] = `http://127.0.0.1:${ports[i]}`));
  const children: { child: ChildProcess; name: string; out: string[] }[] = [];
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      for (const { child } of children) signalChild(child, 'SIGTERM');
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline && children.some(({ child }) => child.pid !== undefined && alive(child.pid))) {
        await new Promise((r) => setTimeout(r, 100));
      }
      for (const { child, name } of children) {
        signalChild(child, 'SIGKILL');
        if (options.pidDir) rmSync(join(options.pidDir, `example-${name}.pid`), { force: true });
      }
    })());

  const started = specs.map((spec, i) => {
    const child = spawn(process.execPath, ['--import', 'tsx', RUN_TS, spec.name], {
      cwd: REPO,
      env: childEnv({ ...spec.env(urls, options.databaseUrl), PORT: String(ports[i]), OTEL_EXPORTER_OTLP_ENDPOINT: options.otlpEndpoint }),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const entry = { child, name: spec.name, out: [] as string[] };
    children.push(entry);
    if (options.pidDir && child.pid !== undefined) writeFileSync(join(options.pidDir, `example-${spec.name}.pid`), String(child.pid));
    return new Promise<ServiceProcess>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${spec.name}: not ready after ${options.startTimeoutMs ?? 60_000} ms:\n${entry.out.join('')}`)),
        options.startTimeoutMs ?? 60_000,
      );
      let line = '';
      child.stdout!.setEncoding('utf8');
      child.stderr!.setEncoding('utf8');
      child.stderr!.on('data', (d: string) => entry.out.push(d));
      child.stdout!.on('data', (d: string) => {
        entry.out.push(d);
        line += d;
        for (let nl = line.indexOf('\n'); nl >= 0; nl = line.indexOf('\n')) {
          const text = line.slice(0, nl);
          line = line.slice(nl + 1);
          if (text.startsWith('{"ready":true')) {
            clearTimeout(timer);
            resolve({ name: spec.name, url: urls[spec.name]!, pid: child.pid!, output: () => entry.out.join('') });
          }
        }
      });
      child.once('exit', (code, sig) => {
        clearTimeout(timer);
        reject(new Error(`${spec.name} exited (${sig ?? code}) before it was ready:\n${entry.out.join('')}`));
      });
    });
  });
  try {
    const services = await Promise.all(started);
    return { urls, services, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
