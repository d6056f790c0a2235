/**
 * Scenario 2: a connection pool whose holders all wait for a lock held by a request that needs one more
 * connection.
 *
 * `catalog` has a pool of 4 PostgreSQL connections and a price cache behind a mutex. A price refresh takes
 * the cache's mutex and asks the slow `pricing` service for prices (1 s). Meanwhile 4 reservations each
 * take a connection for their transaction and queue for the price cache. When the prices come, the
 * refresh asks the pool for a connection to write its audit row: there is none, and the 4 that are out
 * will come back only after the refresh lets go of the cache. The pool's connect timeout (6 s) breaks it.
 */
import { call, callOk, settleAll, until } from './drive.js';
import type { Scenario } from './scenario.js';

const POOL_SIZE = 4;

interface CatalogStatus {
  pool: { size: number; total: number; idle: number; waiting: number };
  priceCache: { locked: boolean; waiting: number };
}

async function status(url: string): Promise<CatalogStatus> {
  return (await callOk('GET', `${url}/status`)).body as CatalogStatus;
}

/** Scenario 2: pool exhaustion around a lock. */
export const pool: Scenario = {
  id: 'pool',
  title: 'A pool of 4 connections, all held by requests waiting for a lock whose holder needs a 5th',
  story: [
    'catalog POST /prices/refresh:     holds mutex catalog/price-cache, calls pricing (1 s), then waits for a connection of catalog/pg-pool',
    'catalog POST /items/{1..4}/reserve: each holds one of the 4 connections of catalog/pg-pool, waits for catalog/price-cache',
    '(the pool connect timeout, 6 s, breaks it)',
  ],
  services: [
    { name: 'pricing', env: () => ({ LATENCY_MS: '1000' }) },
    {
      name: 'catalog',
      env: (u, db) => ({ DATABASE_URL: db, PRICING_URL: u.pricing!, POOL_SIZE: String(POOL_SIZE), CONNECT_TIMEOUT_MS: '6000' }),
    },
  ],
  expected: {
    services: ['catalog'],
    resources: ['catalog/pg-pool', 'catalog/price-cache'],
    brokenBy: 'pool.timeout',
  },
  async deadlock({ urls, log }) {
    const calls: Record<string, ReturnType<typeof call>> = {};
    calls.refresh = call('POST', `${urls.catalog}/prices/refresh`);
    await until('the refresh to hold the price cache', async () => ((await status(urls.catalog!)).priceCache.locked ? true : undefined));
    for (let item = 1; item <= POOL_SIZE; item++) calls[`reserve ${item}`] = call('POST', `${urls.catalog}/items/${item}/reserve`);
    log(`sent a price refresh, then ${POOL_SIZE} reservations`);
    const seen = await until('the refresh to queue for a connection behind 4 holders', async () => {
      const s = await status(urls.catalog!);
      return s.pool.waiting >= 1 && s.pool.idle === 0 && s.priceCache.waiting >= POOL_SIZE ? s : undefined;
    });
    const formedAt = Date.now();
    log(`catalog: ${seen.pool.total - seen.pool.idle}/${seen.pool.size} connections out, ${seen.pool.waiting} queued for one; ${seen.priceCache.waiting} queued for the price cache`);
    return { formedAt, evidence: { catalog: seen }, settled: settleAll(calls) };
  },
  async calm({ urls }) {
    const out: Record<string, Awaited<ReturnType<typeof callOk>>> = {};
    out.refresh = await callOk('POST', `${urls.catalog}/prices/refresh`);
    for (let item = 1; item <= POOL_SIZE; item++) out[`reserve ${item}`] = await callOk('POST', `${urls.catalog}/items/${item}/reserve`);
    return out;
  },
};
