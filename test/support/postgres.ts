/**
 * A real PostgreSQL server for the tests: `ensurePostgres()` starts one throwaway cluster per test run with
 * scripts/postgres.sh (Debian's package, installed by the script when missing) on a free port, and every
 * test file of the run, in any worker process, joins it. Its pid file lives in $WAITGRAPH_TEST_RUN_DIR, so
 * the global teardown stops it when the run ends. The server trusts local connections as `postgres`.
 */
import { freePorts, runScript, sharedServer } from './servers.js';

/** The run's PostgreSQL server. */
export interface TestPostgres {
  host: string;
  port: number;
  user: string;
  database: string;
  /** `postgres://postgres@127.0.0.1:<port>/postgres` */
  connectionString: string;
}

let started: Promise<TestPostgres> | undefined;

/** Starts this run's PostgreSQL server, or joins it if another test file already started it. */
export function ensurePostgres(): Promise<TestPostgres> {
  started ??= sharedServer<TestPostgres>('postgres', async () => {
    // The port is one the kernel had free, and initdb takes seconds before the server binds it: meanwhile an
    // outgoing connection of another test file may be given it as its local port. Then another port.
    for (let attempt = 1; ; attempt++) {
      const [port] = await freePorts(1);
      const env = { WAITGRAPH_PG_PORT: String(port) };
      try {
        await runScript('postgres.sh', 'start', env);
      } catch (err) {
        if (attempt >= 3 || !/Address already in use/.test((err as Error).message)) throw err;
        await runScript('postgres.sh', 'stop', env).catch(() => {}); // its cluster's directory
        continue;
      }
      return {
        host: '127.0.0.1',
        port: port!,
        user: 'postgres',
        database: 'postgres',
        connectionString: `postgres://postgres@127.0.0.1:${port}/postgres`,
      };
    }
  });
  started.catch(() => (started = undefined));
  return started;
}
