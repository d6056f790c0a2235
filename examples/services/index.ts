/**
 * The example services by name, for examples/run.ts. Each module exports `start(telemetry)` and reads its
 * configuration from the environment (documented at the top of each module).
 */
import type { Service } from '../lib/http-service.js';
import type { Telemetry } from '../lib/telemetry.js';

/** How to load one service. */
export interface ServiceDef {
  /** `proxy` services record no wait events (see lib/telemetry.ts). */
  role: 'service' | 'proxy';
  load(): Promise<{ start(telemetry: Telemetry): Promise<Service> }>;
}

/** Every example service. */
export const SERVICES = {
  orders: { role: 'service', load: () => import('./orders.js') },
  billing: { role: 'service', load: () => import('./billing.js') },
  catalog: { role: 'service', load: () => import('./catalog.js') },
  pricing: { role: 'service', load: () => import('./pricing.js') },
  checkout: { role: 'service', load: () => import('./checkout.js') },
  inventory: { role: 'service', load: () => import('./inventory.js') },
  'inventory-sidecar': { role: 'proxy', load: () => import('./inventory-sidecar.js') },
  dataplane: { role: 'service', load: () => import('./dataplane.js') },
  controlplane: { role: 'service', load: () => import('./controlplane.js') },
} as const satisfies Record<string, ServiceDef>;

/** The name of an example service. */
export type ServiceName = keyof typeof SERVICES;
