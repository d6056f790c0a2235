/**
 * `controlplane` (scenario 4, with `dataplane`): signs the data plane's workload certificates and pushes
 * configuration to it.
 *
 *   POST /config          accept a new configuration (202); it is pushed to the data plane after
 *                         PUSH_DELAY_MS (pushes are batched), or with the next certificate, whichever is first
 *   GET  /config/status   the newest accepted version, and the newest the data plane acknowledged
 *   POST /certs/sign      issue a node's certificate (`cert.issue` ... `cert.ready`). The new certificate
 *                         must match the configuration, so a pending configuration is pushed first and its
 *                         acknowledgement awaited; a failed push is queued again and the certificate issued
 *
 * Environment: PORT, DATAPLANE_URL; PUSH_DELAY_MS [1000].
 */
import { trace } from '@opentelemetry/api';
import { certIssue } from 'waitgraph/instrumentation';
import { callJson, env, envInt, serve, type Service } from '../lib/http-service.js';
import type { Telemetry } from '../lib/telemetry.js';

const tracer = trace.getTracer('waitgraph-examples');

/** Starts the service. */
export async function start(telemetry: Telemetry): Promise<Service> {
  const dataplane = env('DATAPLANE_URL');
  const pushDelayMs = envInt('PUSH_DELAY_MS', 1000);
  let accepted = 0;
  let acked = 0;
  let pending: number | undefined;
  let timer: NodeJS.Timeout | undefined;
  let serial = 1000;

  /** Pushes the pending configuration, if any; queues it again if the data plane did not take it. */
  async function pushPending(): Promise<void> {
    if (pending === undefined) return;
    const version = pending;
    pending = undefined;
    const ack = await callJson(`${dataplane}/config`, { body: { version } }).catch((err: Error) => ({ ok: false, status: 0, body: err.message }));
    if (ack.ok) acked = Math.max(acked, version);
    else if (pending === undefined) schedule(version);
  }

  function schedule(version: number): void {
    pending = Math.max(pending ?? 0, version);
    if (timer !== undefined) return;
    timer = setTimeout(() => {
      timer = undefined;
      // a batch push is work of its own: a root span, not part of the request that queued it
      void tracer.startActiveSpan('push config', { root: true }, (span) => pushPending().finally(() => span.end()));
    }, pushDelayMs);
  }

  return serve({
    name: 'controlplane',
    port: envInt('PORT', 0),
    telemetry,
    onStop: async () => clearTimeout(timer),
    routes: {
      'POST /config': () => {
        accepted++;
        schedule(accepted);
        return { status: 202, body: { version: accepted } };
      },
      'GET /config/status': () => ({ status: 200, body: { accepted, acked, pending: pending ?? null } }),
      'POST /certs/sign': async ({ body }) => {
        const { node, cert } = body as { node: string; cert: string };
        const issued = await certIssue(cert, async () => {
          await pushPending();
          return ++serial;
        });
        return { status: 200, body: { node, cert, serial: issued } };
      },
    },
  });
}
