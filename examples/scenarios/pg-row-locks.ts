/**
 * Scenario 1: two services each hold a PostgreSQL row lock and call each other.
 *
 * `orders` checks out order 42: it locks row orders/42 and, still holding it, charges invoice 7 in
 * `billing`, whose handler waits for row invoices/7. At the same time `billing` closes invoice 7: it locks
 * invoices/7 and, still holding it, settles order 42 in `orders`, whose handler waits for orders/42.
 * Each transaction that holds a row waits for an HTTP reply, not for a lock, so PostgreSQL's wait-for
 * graph has two separate edges and no cycle: its deadlock detector never fires. `orders`' lock_timeout
 * (6 s) breaks it.
 */
import { DEADLOCK_DETECTED, LOCK_NOT_AVAILABLE } from '../lib/pg-tx.js';
import { pgHasCycle, pgLockWaits } from '../lib/database.js';
import { call, callOk, settleAll, until } from './drive.js';
import type { Scenario } from './scenario.js';

const SERVICES = ['orders', 'billing'];

/** Scenario 1: a cross-service row-lock cycle that PostgreSQL cannot see. */
export const pgRowLocks: Scenario = {
  id: 'pg-row-locks',
  title: 'Two services, two PostgreSQL row locks, calling each other',
  story: [
    'orders  POST /orders/42/checkout: holds row examples-db/orders/42, calls billing /invoices/7/charge',
    'billing POST /invoices/7/charge:  waits for row examples-db/invoices/7',
    'billing POST /invoices/7/close:   holds row examples-db/invoices/7, calls orders /orders/42/settle',
    'orders  POST /orders/42/settle:   waits for row examples-db/orders/42 (lock_timeout 6 s breaks it)',
  ],
  services: [
    { name: 'orders', env: (u, db) => ({ DATABASE_URL: db, BILLING_URL: u.billing!, LOCK_TIMEOUT_MS: '6000' }) },
    { name: 'billing', env: (u, db) => ({ DATABASE_URL: db, ORDERS_URL: u.orders!, LOCK_TIMEOUT_MS: '30000' }) },
  ],
  expected: {
    services: ['billing', 'orders'],
    resources: ['examples-db/invoices/7', 'examples-db/orders/42'],
    brokenBy: 'lock.timeout',
  },
  async deadlock({ urls, db, log }) {
    const checkout = call('POST', `${urls.orders}/orders/42/checkout?invoice=7`);
    const close = call('POST', `${urls.billing}/invoices/7/close?order=42`);
    log('sent orders /orders/42/checkout and billing /invoices/7/close at once');
    const waits = await until('both inner transactions to wait for a row lock', async () => {
      const w = await pgLockWaits(db, SERVICES);
      return w.length >= 2 ? w : undefined;
    });
    const formedAt = Date.now();
    log(`PostgreSQL: ${waits.map((w) => `${w.service} waits on ${w.relation} for ${w.blockers.map((b) => `${b.service} (${b.state})`).join(', ')}`).join('; ')}`);
    return { formedAt, evidence: { pgLockWaits: waits, pgCycle: pgHasCycle(waits) }, settled: settleAll({ checkout, close }) };
  },
  async calm({ urls }) {
    const checkout = await callOk('POST', `${urls.orders}/orders/42/checkout?invoice=7`);
    const close = await callOk('POST', `${urls.billing}/invoices/7/close?order=42`);
    return { checkout, close };
  },
};

/** SQLSTATEs the deadlocked run may show: a lock timeout, never PostgreSQL's own deadlock error. */
export const PG_SQLSTATES = { lockTimeout: LOCK_NOT_AVAILABLE, deadlock: DEADLOCK_DETECTED };
