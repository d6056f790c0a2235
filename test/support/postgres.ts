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
    const [port] = await freePorts(1);
    await runScript('postgres.sh', 'start', { WAITGRAPH_PG_PORT: String(port) });
    return {
      host: '127.0.0.1',
      port: port!,
      user: 'postgres',
      database: 'postgres',
      connectionString: `postgres://postgres@127.0.0.1:${port}/postgres`,
    };
  });
  started.catch(() => (started = undefined));
  return started;
}
