/**
 * `inventory` (scenario 3), reached through its sidecar `inventory-sidecar`.
 *
 *   POST /stock/:sku/reserve?promotion=P   lock stock/:sku, check with the warehouse (slow: CHECK_MS), then
 *                                          lock promotions/P to use up one of its coupons, commit
 *
 * The work goes on when the caller hangs up (as in most servers): a sidecar's per-try timeout leaves the
 * first attempt's transaction running, and holding its row, while the retry comes in.
 *
 * Environment: PORT, DATABASE_URL; CHECK_MS [1500]; LOCK_TIMEOUT_MS [30000].
 */
import { env, envInt, type Service } from '../lib/http-service.js';
import { serveWithDatabase } from '../lib/db-service.js';
import { inTransaction } from '../lib/pg-tx.js';
import type { Telemetry } from '../lib/telemetry.js';

/** Starts the service. */
export function start(telemetry: Telemetry): Promise<Service> {
  const checkMs = envInt('CHECK_MS', 1500);
  const lockTimeoutMs = envInt('LOCK_TIMEOUT_MS', 30_000);
  return serveWithDatabase({ name: 'inventory', telemetry, databaseUrl: env('DATABASE_URL') }, (db) => ({
    'POST /stock/:sku/reserve': async ({ params, query }) => {
      const sku = Number(params.sku);
      const promotion = Number(query.get('promotion') ?? 7);
      await inTransaction(db, 'reserve stock', { lockTimeoutMs }, async (tx) => {
        await tx.lockRow('stock', sku);
        await tx.query('SELECT pg_sleep($1)', [checkMs / 1000]); // the warehouse check: the slow part
        await tx.lockRow('promotions', promotion);
        await tx.query('UPDATE promotions SET remaining = remaining - 1 WHERE id = $1', [promotion]);
        await tx.query('UPDATE stock SET available = available - 1 WHERE id = $1', [sku]);
      });
      return { status: 200, body: { sku, reserved: 1, promotion } };
    },
  }));
}
