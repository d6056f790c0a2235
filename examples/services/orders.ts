/**
 * `orders` (scenario 1, with `billing`). Checking out an order locks its row, does the order's own work,
 * and charges the invoice in `billing` while still holding the row; settling an order (which `billing`
 * asks for when it closes an invoice) locks the same row.
 *
 *   POST /orders/:id/checkout?invoice=N   lock orders/:id, work, call billing /invoices/N/charge, commit
 *   POST /orders/:id/settle               lock orders/:id (lock_timeout LOCK_TIMEOUT_MS), mark settled
 *
 * Environment: PORT, DATABASE_URL, BILLING_URL; WORK_MS [300] the order's own work while holding the row;
 * LOCK_TIMEOUT_MS [6000] PostgreSQL's lock_timeout for settling.
 */
import { callJson, env, envInt, HttpError, type Service } from '../lib/http-service.js';
import { serveWithDatabase } from '../lib/db-service.js';
import { inTransaction } from '../lib/pg-tx.js';
import type { Telemetry } from '../lib/telemetry.js';

/** Starts the service. */
export function start(telemetry: Telemetry): Promise<Service> {
  const billing = env('BILLING_URL');
  const workMs = envInt('WORK_MS', 300);
  const lockTimeoutMs = envInt('LOCK_TIMEOUT_MS', 6000);
  return serveWithDatabase({ name: 'orders', telemetry, databaseUrl: env('DATABASE_URL') }, (db) => ({
    'POST /orders/:id/checkout': async ({ params, query }) => {
      const id = Number(params.id);
      const invoice = Number(query.get('invoice') ?? 7);
      const charge = await inTransaction(db, 'checkout order', {}, async (tx) => {
        await tx.lockRow('orders', id);
        await tx.query(`UPDATE orders SET status = 'checking-out' WHERE id = $1`, [id]);
        await tx.query('SELECT pg_sleep($1)', [workMs / 1000]); // validating the order: the slow part
        const charged = await callJson(`${billing}/invoices/${invoice}/charge`, { body: { order: id } });
        if (!charged.ok) throw new HttpError(502, `billing answered ${charged.status}`, { upstream: charged.body });
        await tx.query(`UPDATE orders SET status = 'paid' WHERE id = $1`, [id]);
        return charged.body;
      });
      return { status: 200, body: { order: id, status: 'paid', charge } };
    },
    'POST /orders/:id/settle': async ({ params }) => {
      const id = Number(params.id);
      await inTransaction(db, 'settle order', { lockTimeoutMs }, async (tx) => {
        await tx.lockRow('orders', id);
        await tx.query(`UPDATE orders SET status = 'settled' WHERE id = $1`, [id]);
      });
      return { status: 200, body: { order: id, status: 'settled' } };
    },
  }));
}
