/**
 * The examples' database: the tables the services share, created (and their rows reset) by the scenario
 * drivers before the services start, and a look at PostgreSQL's own lock table, which shows what
 * PostgreSQL's deadlock detector can and cannot see.
 */
import pg from 'pg';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS orders      (id int PRIMARY KEY, status text NOT NULL);
CREATE TABLE IF NOT EXISTS invoices    (id int PRIMARY KEY, status text NOT NULL, charged int NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS items       (id int PRIMARY KEY, reserved int NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS price_audit (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(), prices jsonb NOT NULL);
CREATE TABLE IF NOT EXISTS carts       (id int PRIMARY KEY, status text NOT NULL, promotion int);
CREATE TABLE IF NOT EXISTS stock       (id int PRIMARY KEY, available int NOT NULL);
CREATE TABLE IF NOT EXISTS promotions  (id int PRIMARY KEY, remaining int NOT NULL);
`;

const ROWS = `
INSERT INTO orders     SELECT g, 'new'  FROM generate_series(1, 100) g ON CONFLICT (id) DO UPDATE SET status = 'new';
INSERT INTO invoices   SELECT g, 'open' FROM generate_series(1, 100) g ON CONFLICT (id) DO UPDATE SET status = 'open', charged = 0;
INSERT INTO items      SELECT g, 0      FROM generate_series(1, 100) g ON CONFLICT (id) DO UPDATE SET reserved = 0;
INSERT INTO carts      VALUES (991, 'open', NULL), (992, 'open', NULL) ON CONFLICT (id) DO UPDATE SET status = 'open', promotion = NULL;
INSERT INTO stock      SELECT g, 1000   FROM generate_series(1, 10) g ON CONFLICT (id) DO UPDATE SET available = 1000;
INSERT INTO promotions SELECT g, 1000   FROM generate_series(1, 10) g ON CONFLICT (id) DO UPDATE SET remaining = 1000;
`;

/** Creates the tables if needed and resets their rows. Safe to run from several processes at once. */
export async function prepareDatabase(connectionString: string): Promise<void> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    await client.query('BEGIN');
    // CREATE TABLE IF NOT EXISTS is not safe against itself running concurrently: serialize
    await client.query('SELECT pg_advisory_xact_lock(4242)');
    await client.query(SCHEMA);
    await client.query(ROWS);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    await client.end();
  }
}

/** A backend waiting for a row lock, as PostgreSQL's lock table shows it. */
export interface PgLockWait {
  pid: number;
  /** The waiting connection's `application_name`: the example service it belongs to. */
  service: string;
  /** The table of the awaited row (PostgreSQL locks a row's tuple, then waits for its holder's transaction). */
  relation: string | null;
  /** The backends it waits for (`pg_blocking_pids`). */
  blockedBy: number[];
  /** What each of those backends is doing: `idle in transaction` means it waits for its client, not for a lock. */
  blockers: { pid: number; service: string; state: string; waitingForLock: boolean }[];
}

/**
 * The connections of `services` that wait for a lock now, with what they wait for: PostgreSQL's view of
 * the wait-for graph (pg_locks and pg_blocking_pids), which is what its deadlock detector searches.
 */
export async function pgLockWaits(db: pg.Pool | pg.Client, services: string[]): Promise<PgLockWait[]> {
  const { rows } = await db.query<{ pid: number; service: string; relation: string | null; blocked_by: number[] }>(`
    SELECT a.pid, a.application_name AS service, (SELECT l.relation::regclass::text FROM pg_locks l
                   WHERE l.pid = a.pid AND l.locktype = 'tuple' LIMIT 1) AS relation,
           pg_blocking_pids(a.pid) AS blocked_by
    FROM pg_stat_activity a
    WHERE a.wait_event_type = 'Lock' AND a.application_name = ANY($1)
    ORDER BY a.pid`, [services]);
  const out: PgLockWait[] = [];
  for (const r of rows) {
    const { rows: blockers } = await db.query<{ pid: number; service: string; state: string; waiting: boolean }>(
      `SELECT pid, application_name AS service, state, wait_event_type IS NOT DISTINCT FROM 'Lock' AS waiting FROM pg_stat_activity WHERE pid = ANY($1)`,
      [r.blocked_by],
    );
    out.push({
      pid: r.pid,
      service: r.service,
      relation: r.relation,
      blockedBy: r.blocked_by,
      blockers: blockers.map((b) => ({ pid: b.pid, service: b.service, state: b.state, waitingForLock: b.waiting })),
    });
  }
  return out;
}

/**
 * Whether PostgreSQL's wait-for graph (backend → the backends blocking it) has a cycle: what its deadlock
 * detector would find.
 */
export function pgHasCycle(waits: PgLockWait[]): boolean {
  const edges = new Map(waits.map((w) => [w.pid, w.blockedBy]));
  const state = new Map<number, 'visiting' | 'done'>();
  const visit = (pid: number): boolean => {
    const s = state.get(pid);
    if (s === 'visiting') return true;
    if (s === 'done') return false;
    state.set(pid, 'visiting');
    for (const next of edges.get(pid) ?? []) if (visit(next)) return true;
    state.set(pid, 'done');
    return false;
  };
  return waits.some((w) => visit(w.pid));
}
