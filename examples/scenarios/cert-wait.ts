/**
 * Scenario 4: a certificate wait between a data-plane and a control-plane service.
 *
 * An operator pushes a new configuration to `controlplane`, which batches pushes (1 s). Before the batch
 * goes out, `dataplane` rotates its workload certificate: it holds its config lock (configuration and
 * certificate change together) and waits for `controlplane` to issue the certificate. Issuing it, the
 * control plane first pushes the pending configuration to the data plane and waits for the ack; the
 * data plane's push handler waits for the config lock. The push handler's lock timeout (6 s) breaks it.
 */
import { certIdOf } from '../services/dataplane.js';
import { call, callOk, settleAll, until } from './drive.js';
import type { Scenario } from './scenario.js';

interface DataplaneStatus {
  configLock: { locked: boolean; waiting: number };
  configVersion: number;
  certSerial: number;
}

/** Scenario 4: a certificate-wait cycle. */
export const certWait: Scenario = {
  id: 'cert-wait',
  title: 'A certificate wait between a data plane and its control plane',
  story: [
    'dataplane    POST /cert/rotate:  holds dataplane/config-lock, waits for certificate spiffe://examples/dataplane/dp-1 (issuer controlplane)',
    'controlplane POST /certs/sign:   issues that certificate; first pushes the pending config to dataplane and waits for the ack',
    'dataplane    POST /config:       waits for dataplane/config-lock (its 6 s timeout breaks it)',
  ],
  services: [
    { name: 'dataplane', env: (u) => ({ CONTROLPLANE_URL: u.controlplane!, NODE_ID: 'dp-1', CONFIG_LOCK_TIMEOUT_MS: '6000' }) },
    { name: 'controlplane', env: (u) => ({ DATAPLANE_URL: u.dataplane!, PUSH_DELAY_MS: '1000' }) },
  ],
  expected: {
    services: ['controlplane', 'dataplane'],
    resources: [certIdOf('dp-1'), 'dataplane/config-lock'].sort(),
    brokenBy: 'lock.timeout',
  },
  async deadlock({ urls, log }) {
    const config = await callOk('POST', `${urls.controlplane}/config`, { routes: ['v2'] });
    const rotate = call('POST', `${urls.dataplane}/cert/rotate`);
    log('pushed a config to controlplane (batched), then asked dataplane to rotate its certificate');
    const seen = await until('the config push to wait for the config lock', async () => {
      const s = (await callOk('GET', `${urls.dataplane}/status`)).body as DataplaneStatus;
      return s.configLock.locked && s.configLock.waiting >= 1 ? s : undefined;
    });
    const formedAt = Date.now();
    log(`dataplane: config lock held, ${seen.configLock.waiting} waiting for it`);
    return { formedAt, evidence: { dataplane: seen }, settled: settleAll({ rotate, config: Promise.resolve(config) }) };
  },
  async calm({ urls }) {
    const config = await callOk('POST', `${urls.controlplane}/config`, { routes: ['v2'] });
    const version = (config.body as { version: number }).version;
    await until('the batched config push to be acknowledged', async () => {
      const s = (await callOk('GET', `${urls.controlplane}/config/status`)).body as { acked: number };
      return s.acked >= version ? true : undefined;
    });
    const rotate = await callOk('POST', `${urls.dataplane}/cert/rotate`);
    return { config, rotate };
  },
};
