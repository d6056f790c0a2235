/**
 * The broker of the Kafka benchmark: `$WAITGRAPH_KAFKA_BOOTSTRAP` when set, else a single-node KRaft broker
 * started with scripts/kafka.sh on free ports, with a data directory of its own that is removed when it
 * stops.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const SCRIPT = new URL('../../scripts/kafka.sh', import.meta.url).pathname;

/** A broker for the benchmark. */
export interface BenchBroker {
  /** `host:port`. */
  bootstrap: string;
  /** Whether this process started it (and stops it). */
  owned: boolean;
  /** Its process id, when this process started it. */
  pid?: number;
  /** Stops it, if this process started it. */
  stop(): Promise<void>;
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.once('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => ok(port));
    });
  });
}

/** The broker named by `$WAITGRAPH_KAFKA_BOOTSTRAP`, or a new one. */
export async function benchBroker(log: (line: string) => void): Promise<BenchBroker> {
  const given = process.env.WAITGRAPH_KAFKA_BOOTSTRAP;
  if (given) return { bootstrap: given, owned: false, stop: async () => {} };
  const [port, controllerPort] = [await freePort(), await freePort()];
  const dataDir = mkdtempSync(join(tmpdir(), 'waitgraph-bench-kafka-'));
  const env = {
    ...process.env,
    WAITGRAPH_KAFKA_PORT: String(port),
    WAITGRAPH_KAFKA_CONTROLLER_PORT: String(controllerPort),
    WAITGRAPH_KAFKA_DATA_DIR: dataDir,
    WAITGRAPH_KAFKA_HEAP: process.env.WAITGRAPH_KAFKA_HEAP ?? '1g',
  };
  log(`starting a broker on 127.0.0.1:${port} (scripts/kafka.sh; the first run downloads Kafka from Maven Central)`);
  await run(SCRIPT, ['start'], { env, maxBuffer: 1 << 20 });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await run(SCRIPT, ['stop'], { env }).catch(() => {});
    rmSync(dataDir, { recursive: true, force: true });
  };
  const pid = Number(readFileSync(join(dataDir, 'kafka.pid'), 'utf8').trim());
  return { bootstrap: `127.0.0.1:${port}`, owned: true, pid: Number.isInteger(pid) && pid > 0 ? pid : undefined, stop };
}
