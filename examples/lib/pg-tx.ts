/**
 * PostgreSQL transactions that record their row locks as wait events.
 *
 * A row lock taken with `SELECT ... FOR UPDATE` is held by the transaction until it commits or rolls back,
 * so `inTransaction()` gives each transaction a span of its own (`tx <name>`, a child of the active span)
 * and records the lock events on it: `lock.wait` when the row is taken by another transaction,
 * `lock.acquire` once it is ours, `lock.timeout` when PostgreSQL gives up (`lock_timeout`, SQLSTATE 55P03),
 * and `lock.release` for every row at COMMIT or ROLLBACK. The span also carries the pool checkout, since
 * the instrumented pool records it on the active span. Keeping the locks on the transaction's span, not on
 * the request's, matters when the caller hangs up: the server span then ends, but the transaction and its
 * locks live on.
 *
 * Lock ids are `examples-db/<table>/<id>`, the same in every service, so the detector sees that two
 * services wait for the same row. `lock.kind` is `row`.
 */
import { SpanStatusCode, trace, type Span } from '@opentelemetry/api';
import type pg from 'pg';
import { ATTR, EVENT } from 'waitgraph/schemas';

/** The logical name of the examples' database in lock ids. */
export const DB_NAME = 'examples-db';

/** PostgreSQL's SQLSTATE for `lock_timeout` expiring (and NOWAIT failing). */
export const LOCK_NOT_AVAILABLE = '55P03';
/** PostgreSQL's SQLSTATE for a deadlock its own detector found. */
export const DEADLOCK_DETECTED = '40P01';

/** The `lock.id` of a row. */
export function rowLockId(table: string, id: number | string): string {
  return `${DB_NAME}/${table}/${id}`;
}

/** The SQLSTATE of a pg error, if it is one. */
export function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

const tracer = trace.getTracer('waitgraph-examples');

/** Table names are written into SQL, so they are checked against this. */
const IDENT = /^[a-z_][a-z0-9_]*$/;

/** An open transaction. */
export class Tx {
  readonly #held: string[] = [];

  constructor(
    /** The connection the transaction runs on. */
    readonly client: pg.PoolClient,
    readonly span: Span,
  ) {}

  /** Runs a statement in the transaction. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
    return this.client.query<R>(sql, values);
  }

  /**
   * Locks row `id` of `table` (`SELECT * ... FOR UPDATE`) and returns it. Tries without waiting first (under
   * a savepoint, so a busy row does not abort the transaction), so `lock.wait` is recorded only when the
   * row really is taken. Throws pg's error (SQLSTATE 55P03) when `lock_timeout` expires.
   */
  async lockRow<R extends pg.QueryResultRow = pg.QueryResultRow>(table: string, id: number | string): Promise<R | undefined> {
    if (!IDENT.test(table)) throw new Error(`lockRow: bad table name ${table}`);
    const lockId = rowLockId(table, id);
    const attrs = { [ATTR.LOCK_ID]: lockId, [ATTR.LOCK_KIND]: 'row', [ATTR.LOCK_MODE]: 'exclusive' };
    await this.client.query('SAVEPOINT wg_row_lock');
    try {
      const { rows } = await this.client.query<R>(`SELECT * FROM ${table} WHERE id = $1 FOR UPDATE NOWAIT`, [id]);
      await this.client.query('RELEASE SAVEPOINT wg_row_lock');
      this.span.addEvent(EVENT.LOCK_ACQUIRE, attrs);
      this.#held.push(lockId);
      return rows[0];
    } catch (err) {
      if (sqlState(err) !== LOCK_NOT_AVAILABLE) throw err;
      await this.client.query('ROLLBACK TO SAVEPOINT wg_row_lock');
    }
    this.span.addEvent(EVENT.LOCK_WAIT, attrs);
    try {
      const { rows } = await this.client.query<R>(`SELECT * FROM ${table} WHERE id = $1 FOR UPDATE`, [id]);
      this.span.addEvent(EVENT.LOCK_ACQUIRE, attrs);
      this.#held.push(lockId);
      return rows[0];
    } catch (err) {
      // lock_timeout, a cancel, a lost connection: either way this task no longer waits for the row
      this.span.addEvent(EVENT.LOCK_TIMEOUT, attrs);
      throw err;
    }
  }

  /** Records the release of every row lock (the transaction just ended). */
  released(): void {
    for (const lockId of this.#held.splice(0)) this.span.addEvent(EVENT.LOCK_RELEASE, { [ATTR.LOCK_ID]: lockId });
  }
}

/** Options of `inTransaction`. */
export interface TransactionOptions {
  /** PostgreSQL's `lock_timeout` for this transaction, in ms. Default 0: wait for as long as it takes. */
  lockTimeoutMs?: number;
}

/**
 * Runs `fn` in a transaction on a connection from `pool`, in a span `tx <name>`: commits when `fn`
 * resolves, rolls back when it throws (and rethrows). The connection goes back to the pool either way.
 */
export function inTransaction<T>(pool: pg.Pool, name: string, options: TransactionOptions, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return tracer.startActiveSpan(`tx ${name}`, { attributes: { 'db.system.name': 'postgresql' } }, async (span) => {
    let client: pg.PoolClient | undefined;
    let tx: Tx | undefined;
    try {
      client = await pool.connect();
      tx = new Tx(client, span);
      await client.query('BEGIN');
      if (options.lockTimeoutMs) await client.query(`SET LOCAL lock_timeout = ${Math.floor(options.lockTimeoutMs)}`);
      const result = await fn(tx);
      await client.query('COMMIT');
      tx.released();
      return result;
    } catch (err) {
      if (client !== undefined) {
        await client.query('ROLLBACK').catch(() => {});
        tx?.released();
      }
      span.recordException(err as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
      throw err;
    } finally {
      client?.release();
      span.end();
    }
  });
}
