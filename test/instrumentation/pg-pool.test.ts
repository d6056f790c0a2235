/**
 * pg's Pool against a real PostgreSQL server (Debian's package, started by the test setup): connect
 * waits, checkouts and releases, through the contrib-style instrumentation (pg required after it is
 * enabled) and through the explicit `instrumentPgPool()`, with the results and errors pg gives anyway.
 */
import { createRequire } from 'node:module';
import type * as PG from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ATTR, EVENT } from '../../schemas/index.js';
import { instrumentPgPool, PgPoolInstrumentation, pgPoolName } from '../../instrumentation/index.js';
import { ensurePostgres, type TestPostgres } from '../support/postgres.js';
import { endedSpan, events, inSpan, names, startTracing } from './support/tracing.js';

const tracing = startTracing();
const { tracer } = tracing;
const instrumentation = new PgPoolInstrumentation();
// required, not imported, and after the instrumentation is enabled: the require hook patches pg-pool
const pg = createRequire(import.meta.url)('pg') as typeof PG;

let server: TestPostgres;
const pools: PG.Pool[] = [];

function pool(config: PG.PoolConfig): PG.Pool {
  const p = new pg.Pool({ connectionString: server.connectionString, ...config });
  pools.push(p);
  return p;
}

/** Three clients in their own spans, each holding a connection ~100 ms. */
function threeClients(p: PG.Pool): Promise<number[]> {
  return Promise.all(
    [1, 2, 3].map((n) =>
      inSpan(tracer, `client-${n}`, async () => {
        const client = await p.connect();
        try {
          const { rows } = await client.query('select $1::int as n, pg_sleep(0.1)', [n]);
          return rows[0].n as number;
        } finally {
          client.release();
        }
      }),
    ),
  );
}

beforeAll(async () => {
  server = await ensurePostgres();
});
beforeEach(() => tracing.exporter.reset());
afterAll(async () => {
  await Promise.all(pools.map((p) => p.end()));
  instrumentation.disable();
  await tracing.shutdown();
});

describe('pg Pool (PgPoolInstrumentation)', () => {
  it('records one wait when 3 clients share 2 connections, and a checkout and checkin for each', async () => {
    const p = pool({ max: 2 });
    expect(await threeClients(p)).toEqual([1, 2, 3]);
    const name = `pg:127.0.0.1:${server.port}/postgres`;
    const spans = [1, 2, 3].map((n) => endedSpan(tracing, `client-${n}`));
    const shapes = spans.map(names).sort((a, b) => a.length - b.length);
    expect(shapes).toEqual([
      [EVENT.POOL_CHECKOUT, EVENT.POOL_CHECKIN],
      [EVENT.POOL_CHECKOUT, EVENT.POOL_CHECKIN],
      [EVENT.POOL_WAIT, EVENT.POOL_CHECKOUT, EVENT.POOL_CHECKIN],
    ]);
    const waiter = spans.find((s) => names(s).length === 3)!;
    expect(events(waiter)).toEqual([
      { name: EVENT.POOL_WAIT, attributes: { [ATTR.POOL_NAME]: name, [ATTR.POOL_SIZE]: 2 } },
      { name: EVENT.POOL_CHECKOUT, attributes: { [ATTR.POOL_NAME]: name, [ATTR.POOL_SIZE]: 2 } },
      { name: EVENT.POOL_CHECKIN, attributes: { [ATTR.POOL_NAME]: name } },
    ]);
  });

  it('covers pool.query (the callback form of connect) and keeps its results and errors', async () => {
    const p = pool({ max: 1 });
    const [ok, bad] = await Promise.all([
      inSpan(tracer, 'q-ok', () => p.query('select 40 + 2 as answer')),
      inSpan(tracer, 'q-bad', () => p.query('select * from no_such_table')).catch((err: Error) => err),
    ]);
    expect(ok.rows).toEqual([{ answer: 42 }]);
    expect(bad).toBeInstanceOf(Error);
    expect((bad as Error & { code?: string }).code).toBe('42P01');
    expect(names(endedSpan(tracing, 'q-ok'))).toEqual([EVENT.POOL_CHECKOUT, EVENT.POOL_CHECKIN]);
    expect(names(endedSpan(tracing, 'q-bad'))).toEqual([EVENT.POOL_WAIT, EVENT.POOL_CHECKOUT, EVENT.POOL_CHECKIN]);
    // and the callback form itself, with its `done`
    const viaCallback = await inSpan(
      tracer,
      'cb',
      () =>
        new Promise<number>((resolve, reject) =>
          p.connect((err, client, done) => {
            if (err || !client) return reject(err);
            client.query('select 7 as n', (qerr, res) => {
              done();
              if (qerr) reject(qerr);
              else resolve(res.rows[0].n);
            });
          }),
        ),
    );
    expect(viaCallback).toBe(7);
    expect(names(endedSpan(tracing, 'cb'))).toEqual([EVENT.POOL_CHECKOUT, EVENT.POOL_CHECKIN]);
  });

  it('records pool.timeout when connectionTimeoutMillis gives up, with pg error unchanged', async () => {
    const p = pool({ max: 1, connectionTimeoutMillis: 150 });
    const held = await p.connect();
    await expect(inSpan(tracer, 'late', () => p.connect())).rejects.toThrow('timeout exceeded when trying to connect');
    held.release();
    expect(names(endedSpan(tracing, 'late'))).toEqual([EVENT.POOL_WAIT, EVENT.POOL_TIMEOUT]);
    // a double release still throws as pg makes it
    const c = await p.connect();
    c.release();
    expect(() => c.release()).toThrow(/already been released/);
  });

  it('records nothing without a span', async () => {
    const p = pool({ max: 1 });
    const { rows } = await p.query('select 1 as one');
    expect(rows).toEqual([{ one: 1 }]);
    expect(tracing.exporter.getFinishedSpans()).toEqual([]);
  });
});

describe('instrumentPgPool', () => {
  it('names the pool and records once even over the patched prototype', async () => {
    const p = instrumentPgPool(pool({ max: 2 }), { name: 'orders-db' });
    expect(await threeClients(p)).toEqual([1, 2, 3]);
    const all = [1, 2, 3].flatMap((n) => events(endedSpan(tracing, `client-${n}`)));
    expect(all.filter((e) => e.name === EVENT.POOL_CHECKOUT)).toHaveLength(3);
    expect(all.filter((e) => e.name === EVENT.POOL_WAIT)).toHaveLength(1);
    expect(new Set(all.map((e) => e.attributes[ATTR.POOL_NAME]))).toEqual(new Set(['orders-db']));
  });

  it('derives the default name as pg does', () => {
    expect(pgPoolName({ connectionString: 'postgres://u@db.internal:6543/orders' })).toBe('pg:db.internal:6543/orders');
    expect(pgPoolName({ host: 'h', port: 1, database: 'd' })).toBe('pg:h:1/d');
  });
});
