/**
 * `checkout` (scenario 3, with `inventory` behind its sidecar `inventory-sidecar`).
 *
 *   POST /carts/:id/checkout?sku=N&promotion=P   lock carts/:id, reserve the stock through inventory's
 *                                                sidecar (INVENTORY_URL), commit
 *   POST /promotions/:id/apply?cart=C            lock promotions/:id, then carts/C (lock_timeout
 *                                                LOCK_TIMEOUT_MS), attach the promotion to the cart
 *
 * Environment: PORT, DATABASE_URL, INVENTORY_URL (the sidecar); LOCK_TIMEOUT_MS [8000].
 */
import { callJson, env, envInt, HttpError, type Service } from '../lib/http-service.js';
import { serveWithDatabase } from '../lib/db-service.js';
import { inTransaction } from '../lib/pg-tx.js';
import type { Telemetry } from '../lib/telemetry.js';

/** Starts the service. */
export function start(telemetry: Telemetry): Promise<Service> {
  const inventory = env('INVENTORY_URL');
  const lockTimeoutMs = envInt('LOCK_TIMEOUT_MS', 8000);
  return serveWithDatabase({ name: 'checkout', telemetry, databaseUrl: env('DATABASE_URL') }, (db) => ({
    'POST /carts/:id/checkout': async ({ params, query }) => {
      const id = Number(params.id);
      const sku = Number(query.get('sku') ?? 5);
      const promotion = Number(query.get('promotion') ?? 7);
      const reservation = await inTransaction(db, 'checkout cart', {}, async (tx) => {
        await tx.lockRow('carts', id);
        const reserved = await callJson(`${inventory}/stock/${sku}/reserve?promotion=${promotion}`, { body: { cart: id } });
        if (!reserved.ok) throw new HttpError(502, `inventory answered ${reserved.status}`, { upstream: reserved.body });
        await tx.query(`UPDATE carts SET status = 'ordered' WHERE id = $1`, [id]);
        return reserved.body;
      });
      return { status: 200, body: { cart: id, status: 'ordered', reservation } };
    },
    'POST /promotions/:id/apply': async ({ params, query }) => {
      const id = Number(params.id);
      const cart = Number(query.get('cart') ?? 991);
      await inTransaction(db, 'apply promotion', { lockTimeoutMs }, async (tx) => {
        await tx.lockRow('promotions', id);
        await tx.lockRow('carts', cart);
        await tx.query('UPDATE carts SET promotion = $2 WHERE id = $1', [cart, id]);
      });
      return { status: 200, body: { cart, promotion: id } };
    },
  }));
}
