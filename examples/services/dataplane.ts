/**
 * `dataplane` (scenario 4, with `controlplane`): a data-plane node whose configuration and workload
 * certificate change together, under one lock (a waitgraph Mutex, `dataplane/config-lock`).
 *
 *   POST /cert/rotate   hold the config lock, and wait for the control plane to issue the node's new
 *                       certificate (`cert.wait` on spiffe://examples/dataplane/<NODE_ID>, issuer controlplane)
 *   POST /config        a configuration push from the control plane: apply it under the config lock,
 *                       giving up after CONFIG_LOCK_TIMEOUT_MS (503), then acknowledge
 *   GET  /status        the config lock (held, waiters), the config version and certificate serial
 *
 * Environment: PORT, CONTROLPLANE_URL; NODE_ID [dp-1]; CONFIG_LOCK_TIMEOUT_MS [6000].
 */
import { certWait, Mutex } from 'waitgraph/instrumentation';
import { callJson, env, envInt, HttpError, serve, type Service } from '../lib/http-service.js';
import type { Telemetry } from '../lib/telemetry.js';

/** The SPIFFE id of a data-plane node's workload certificate. */
export function certIdOf(nodeId: string): string {
  return `spiffe://examples/dataplane/${nodeId}`;
}

/** Starts the service. */
export async function start(telemetry: Telemetry): Promise<Service> {
  const controlplane = env('CONTROLPLANE_URL');
  const nodeId = env('NODE_ID', 'dp-1');
  const lockTimeoutMs = envInt('CONFIG_LOCK_TIMEOUT_MS', 6000);
  const configLock = new Mutex({ id: 'dataplane/config-lock' });
  const certId = certIdOf(nodeId);
  let configVersion = 0;
  let certSerial = 0;
  let lockWaiters = 0;

  return serve({
    name: 'dataplane',
    port: envInt('PORT', 0),
    telemetry,
    routes: {
      'POST /cert/rotate': async () => {
        const serial = await configLock.runExclusive(async () => {
          const issued = await certWait(certId, 'controlplane', () => callJson(`${controlplane}/certs/sign`, { body: { node: nodeId, cert: certId } }));
          if (!issued.ok) throw new HttpError(502, `controlplane answered ${issued.status}`, { upstream: issued.body });
          certSerial = (issued.body as { serial: number }).serial;
          return certSerial;
        });
        return { status: 200, body: { node: nodeId, cert: certId, serial, configVersion } };
      },
      'POST /config': async ({ body }) => {
        const version = (body as { version: number }).version;
        lockWaiters++;
        try {
          await configLock.runExclusive(
            () => {
              configVersion = Math.max(configVersion, version);
            },
            { signal: AbortSignal.timeout(lockTimeoutMs) },
          );
        } catch (err) {
          throw new HttpError(503, `config lock busy: gave up after ${lockTimeoutMs} ms`, { reason: (err as Error).name });
        } finally {
          lockWaiters--;
        }
        return { status: 200, body: { node: nodeId, ack: version } };
      },
      'GET /status': () => ({
        status: 200,
        body: { configLock: { locked: configLock.isLocked(), waiting: lockWaiters }, configVersion, certSerial },
      }),
    },
  });
}
