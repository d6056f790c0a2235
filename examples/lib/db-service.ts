/**
 * A service with a PostgreSQL pool of its own: the pool instrumented by waitgraph (`pool.*` events,
 * `pool.name = <service>/pg-pool`), its connections named after the service in pg_stat_activity, and
 * failed transactions answered as HTTP errors (503 for a lock or pool timeout, with the SQLSTATE).
 */
import pg from 'pg';
import { instrumentPgPool } from 'waitgraph/instrumentation';
import { envInt, HttpError, serve, type Handler, type Service } from './http-service.js';
import { LOCK_NOT_AVAILABLE, sqlState } from './pg-tx.js';
import type { Telemetry } from './telemetry.js';

const { Pool } = pg;

/**
 * The pool of service `service`, instrumented by waitgraph (`pool.*` events, `pool.name =
 * <service>/pg-pool`). Its connections carry the service's name as PostgreSQL's `application_name`, so
 * pg_stat_activity tells whose they are. Idle connections are kept (no idle timeout), so a pool warmed at
 * start stays warm.
 */
export function servicePool(connectionString: string, service: string, options: { max?: number; connectionTimeoutMillis?: number } = {}): pg.Pool {
  const pool = new Pool({
    connectionString,
    application_name: service,
    max: options.max ?? 10,
    idleTimeoutMillis: 0,
    connectionTimeoutMillis: options.connectionTimeoutMillis ?? 0,
  });
  return instrumentPgPool(pool, { name: `${service}/pg-pool` });
}

/** Opens `n` connections and returns them to the pool, so the first requests find them ready. */
export async function warm(pool: pg.Pool, n: number): Promise<void> {
  const clients = await Promise.all(Array.from({ length: n }, () => pool.connect()));
  for (const c of clients) c.release();
}

/**
 * The HTTP answer for a failed transaction: 503 when PostgreSQL gave up waiting for a lock (SQLSTATE
 * 55P03) or the pool for a connection, 500 otherwise, with the SQLSTATE in the body; an HttpError (a
 * failed upstream call) as it is.
 */
export function txFailure(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  const sqlstate = sqlState(err);
  const message = (err as Error).message ?? String(err);
  // pg-pool's connect timeout (connectionTimeoutMillis) is a plain Error with this message
  if (sqlstate === undefined && /timeout exceeded when trying to connect/.test(message)) {
    return new HttpError(503, message, { reason: 'pool-timeout' });
  }
  return new HttpError(sqlstate === LOCK_NOT_AVAILABLE ? 503 : 500, message, sqlstate ? { sqlstate } : {});
}

/** Options of `serveWithDatabase`. */
export interface DatabaseServiceOptions {
  /** The service name (also its connections' `application_name` and its pool's `<name>/pg-pool`). */
  name: string;
  telemetry: Telemetry;
  /** The database (`DATABASE_URL`). */
  databaseUrl: string;
  /** Connections in the pool. Default 10. */
  poolSize?: number;
  /** How long a request waits for a connection before failing. Default 0: for as long as it takes. */
  connectionTimeoutMillis?: number;
  /** Connections opened at start. Default 2. */
  warm?: number;
}

/**
 * Serves the routes that `routes(db)` makes with a pool of its own (see `servicePool`), on PORT. A failed
 * transaction answers as `txFailure` says; the pool closes when the service stops.
 */
export async function serveWithDatabase(options: DatabaseServiceOptions, routes: (db: pg.Pool) => Record<string, Handler>): Promise<Service> {
  const db = servicePool(options.databaseUrl, options.name, { max: options.poolSize, connectionTimeoutMillis: options.connectionTimeoutMillis });
  await warm(db, options.warm ?? 2);
  return serve({
    name: options.name,
    port: envInt('PORT', 0),
    telemetry: options.telemetry,
    routes: routes(db),
    mapError: txFailure,
    onStop: () => db.end(),
  });
}
