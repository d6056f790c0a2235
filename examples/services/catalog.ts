/**
 * `catalog` (scenario 2, with `pricing`). A pool of POOL_SIZE PostgreSQL connections and an in-process
 * price cache guarded by a waitgraph Mutex (`catalog/price-cache`).
 *
 *   POST /prices/refresh       hold the price cache, fetch prices from `pricing` (slow), then write an audit
 *                              row in a transaction of its own: one more connection
 *   POST /items/:id/reserve    in a transaction (one connection), read the item, read its price under the
 *                              price cache's lock, update the item
 *   GET  /status               pool and lock gauges (connections in use, queued; lock held, waiters)
 *
 * A refresh while POOL_SIZE reserves hold every connection and queue for the price cache is the classic
 * pool deadlock: the refresh waits for a connection that only they can give back, and they wait for the
 * cache it holds. The pool's connect timeout (CONNECT_TIMEOUT_MS) breaks it.
 *
 * Environment: PORT, DATABASE_URL, PRICING_URL; POOL_SIZE [4]; CONNECT_TIMEOUT_MS [6000].
 */
import { Mutex } from 'waitgraph/instrumentation';
import { callJson, env, envInt, HttpError, type Service } from '../lib/http-service.js';
import { serveWithDatabase } from '../lib/db-service.js';
import { inTransaction } from '../lib/pg-tx.js';
import type { Telemetry } from '../lib/telemetry.js';

/** Starts the service. */
export function start(telemetry: Telemetry): Promise<Service> {
  const pricing = env('PRICING_URL');
  const size = envInt('POOL_SIZE', 4);
  const priceCache = new Mutex({ id: 'catalog/price-cache' });
  let prices: Record<string, number> = {};
  let cacheWaiters = 0;

  /** Runs `fn` holding the price cache, counting who queues for it (for /status). */
  async function withCache<T>(fn: () => Promise<T> | T): Promise<T> {
    cacheWaiters++;
    let release: () => void;
    try {
      release = await priceCache.acquire();
    } finally {
      cacheWaiters--;
    }
    try {
      return await fn();
    } finally {
      release();
    }
  }

  const options = {
    name: 'catalog',
    telemetry,
    databaseUrl: env('DATABASE_URL'),
    poolSize: size,
    connectionTimeoutMillis: envInt('CONNECT_TIMEOUT_MS', 6000),
    warm: size,
  };
  return serveWithDatabase(options, (db) => ({
    'POST /prices/refresh': async () => {
      const count = await withCache(async () => {
        const fetched = await callJson(`${pricing}/prices`, { method: 'GET' });
        if (!fetched.ok) throw new HttpError(502, `pricing answered ${fetched.status}`);
        const fresh = fetched.body as Record<string, number>;
        // the audit row is written on a connection of its own (a REQUIRES_NEW transaction, as it were)
        await inTransaction(db, 'write price audit', {}, (tx) => tx.query('INSERT INTO price_audit (prices) VALUES ($1)', [JSON.stringify(fresh)]));
        prices = fresh;
        return Object.keys(fresh).length;
      });
      return { status: 200, body: { refreshed: count } };
    },
    'POST /items/:id/reserve': async ({ params }) => {
      const id = Number(params.id);
      const price = await inTransaction(db, 'reserve item', {}, async (tx) => {
        await tx.query('SELECT reserved FROM items WHERE id = $1', [id]);
        const p = await withCache(() => prices[String(id)] ?? null);
        await tx.query('UPDATE items SET reserved = reserved + 1 WHERE id = $1', [id]);
        return p;
      });
      return { status: 200, body: { item: id, reserved: true, price } };
    },
    'GET /status': () => ({
      status: 200,
      body: {
        pool: { size, total: db.totalCount, idle: db.idleCount, waiting: db.waitingCount },
        priceCache: { locked: priceCache.isLocked(), waiting: cacheWaiters },
      },
    }),
  }));
}
