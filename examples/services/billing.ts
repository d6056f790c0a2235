/**
 * `billing` (scenario 1, with `orders`). Closing an invoice locks its row, does the invoice's own work, and
 * settles the order in `orders` while still holding the row; charging an invoice (which `orders` asks for
 * at checkout) locks the same row.
 *
 *   POST /invoices/:id/close?order=N   lock invoices/:id, work, call orders /orders/N/settle, commit
 *   POST /invoices/:id/charge          lock invoices/:id (lock_timeout LOCK_TIMEOUT_MS), add a charge
 *
 * Environment: PORT, DATABASE_URL, ORDERS_URL; WORK_MS [300] the invoice's own work while holding the row;
 * LOCK_TIMEOUT_MS [30000] PostgreSQL's lock_timeout for charging.
 */
import { callJson, env, envInt, HttpError, type Service } from '../lib/http-service.js';
import { serveWithDatabase } from '../lib/db-service.js';
import { inTransaction } from '../lib/pg-tx.js';
import type { Telemetry } from '../lib/telemetry.js';

/** Starts the service. */
export function start(telemetry: Telemetry): Promise<Service> {
  const orders = env('ORDERS_URL');
  const workMs = envInt('WORK_MS', 300);
  const lockTimeoutMs = envInt('LOCK_TIMEOUT_MS', 30_000);
  return serveWithDatabase({ name: 'billing', telemetry, databaseUrl: env('DATABASE_URL') }, (db) => ({
    'POST /invoices/:id/close': async ({ params, query }) => {
      const id = Number(params.id);
      const order = Number(query.get('order') ?? 42);
      await inTransaction(db, 'close invoice', {}, async (tx) => {
        await tx.lockRow('invoices', id);
        await tx.query(`UPDATE invoices SET status = 'closing' WHERE id = $1`, [id]);
        await tx.query('SELECT pg_sleep($1)', [workMs / 1000]); // totting up the invoice: the slow part
        const settled = await callJson(`${orders}/orders/${order}/settle`);
        if (!settled.ok) throw new HttpError(502, `orders answered ${settled.status}`, { upstream: settled.body });
        await tx.query(`UPDATE invoices SET status = 'closed' WHERE id = $1`, [id]);
      });
      return { status: 200, body: { invoice: id, status: 'closed' } };
    },
    'POST /invoices/:id/charge': async ({ params }) => {
      const id = Number(params.id);
      await inTransaction(db, 'charge invoice', { lockTimeoutMs }, async (tx) => {
        await tx.lockRow('invoices', id);
        await tx.query('UPDATE invoices SET charged = charged + 1 WHERE id = $1', [id]);
      });
      return { status: 200, body: { invoice: id, charged: true } };
    },
  }));
}
