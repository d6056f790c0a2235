/**
 * `pricing` (scenario 2): a slow upstream. `GET /prices` answers after LATENCY_MS with a price per item.
 *
 * Environment: PORT; LATENCY_MS [1000].
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { envInt, serve, type Service } from '../lib/http-service.js';
import type { Telemetry } from '../lib/telemetry.js';

/** Starts the service. */
export async function start(telemetry: Telemetry): Promise<Service> {
  const latencyMs = envInt('LATENCY_MS', 1000);
  return serve({
    name: 'pricing',
    port: envInt('PORT', 0),
    telemetry,
    routes: {
      'GET /prices': async () => {
        await sleep(latencyMs);
        const prices: Record<string, number> = {};
        for (let id = 1; id <= 20; id++) prices[id] = 5 + id / 4;
        return { status: 200, body: prices };
      },
    },
  });
}
