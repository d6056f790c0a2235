/**
 * Scenario 3: a request through a retrying sidecar proxy, whose first attempt still holds a lock.
 *
 * `checkout` checks out cart 991: it locks row carts/991 and reserves the stock through `inventory`'s
 * sidecar. `inventory` locks row stock/5 and checks with the warehouse (1.5 s), longer than the sidecar's
 * per-try timeout (1 s): the sidecar hangs up and sends the request again. The first attempt's transaction
 * goes on, still holding stock/5, and the retry waits for it. Meanwhile a promotion is being applied to
 * the same cart: it holds row promotions/7 and waits for carts/991. When the first attempt's warehouse
 * check ends, it needs promotions/7 to use up a coupon: checkout → sidecar → retry → stock/5 → first
 * attempt → promotions/7 → apply → carts/991 → checkout. The promotion's lock_timeout (8 s) breaks it.
 *
 * Alone (`calm`), the same checkout also times out once and retries, and the retry waits for the first
 * attempt's row for a moment: contention, and a duplicate reservation, but no deadlock.
 */
import { pgLockWaits } from '../lib/database.js';
import { call, callOk, settleAll, until } from './drive.js';
import type { Scenario } from './scenario.js';

const SERVICES = ['checkout', 'inventory'];

/** Scenario 3: a deadlock through a sidecar's retry. */
export const sidecarRetry: Scenario = {
  id: 'sidecar-retry',
  title: 'A request through a retrying sidecar proxy, whose first attempt still holds a lock',
  story: [
    'checkout  POST /carts/991/checkout:   holds row examples-db/carts/991, calls inventory through inventory-sidecar',
    'sidecar   attempt 0 times out after 1 s; attempt 1 (http.request.resend_count=1) goes on',
    'inventory attempt 0 (still running):  holds row examples-db/stock/5, waits for row examples-db/promotions/7',
    'inventory attempt 1:                  waits for row examples-db/stock/5',
    'checkout  POST /promotions/7/apply:   holds row examples-db/promotions/7, waits for row examples-db/carts/991 (lock_timeout 8 s breaks it)',
  ],
  services: [
    { name: 'inventory', env: (_u, db) => ({ DATABASE_URL: db, CHECK_MS: '1500', LOCK_TIMEOUT_MS: '30000' }) },
    { name: 'inventory-sidecar', env: (u) => ({ UPSTREAM_URL: u.inventory!, PER_TRY_TIMEOUT_MS: '1000', RETRIES: '1', TIMEOUT_MS: '30000' }) },
    { name: 'checkout', env: (u, db) => ({ DATABASE_URL: db, INVENTORY_URL: u['inventory-sidecar']!, LOCK_TIMEOUT_MS: '8000' }) },
  ],
  expected: {
    services: ['checkout', 'inventory', 'inventory-sidecar'],
    resources: ['examples-db/carts/991', 'examples-db/promotions/7', 'examples-db/stock/5'],
    brokenBy: 'lock.timeout',
  },
  async deadlock({ urls, db, log }) {
    const checkout = call('POST', `${urls.checkout}/carts/991/checkout?sku=5&promotion=7`);
    // once inventory is in its warehouse check, checkout holds the cart and inventory the stock row
    await until('inventory to start its warehouse check', async () => {
      const { rows } = await db.query(`SELECT 1 FROM pg_stat_activity WHERE application_name = 'inventory' AND state = 'active' AND query LIKE 'SELECT pg_sleep%'`);
      return rows.length > 0 ? true : undefined;
    });
    const apply = call('POST', `${urls.checkout}/promotions/7/apply?cart=991`);
    log('sent checkout /carts/991/checkout, then checkout /promotions/7/apply while inventory checks the warehouse');
    const waits = await until(
      'the retry, the first attempt and the promotion to wait for rows',
      async () => {
        const w = await pgLockWaits(db, SERVICES);
        return w.length >= 3 ? w : undefined;
      },
      15_000,
    );
    const formedAt = Date.now();
    log(`PostgreSQL: ${waits.map((w) => `${w.service} waits on ${w.relation}`).join('; ')}`);
    return { formedAt, evidence: { pgLockWaits: waits }, settled: settleAll({ checkout, apply }) };
  },
  async calm({ urls }) {
    const checkout = await callOk('POST', `${urls.checkout}/carts/991/checkout?sku=5&promotion=7`);
    const apply = await callOk('POST', `${urls.checkout}/promotions/7/apply?cart=991`);
    return { checkout, apply };
  },
};
