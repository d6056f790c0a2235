/**
 * `inventory-sidecar` (scenario 3): a small sidecar proxy in front of `inventory`, in the manner of Envoy.
 * Every request gets an ingress SERVER span and one egress CLIENT span per attempt, all marked
 * `component = proxy` and carrying no wait events (the contract treats them as hops); a retry carries
 * `http.request.resend_count` (1, 2, ...), as OpenTelemetry's HTTP conventions have it.
 *
 * Retries: an attempt that is not the last is abandoned after PER_TRY_TIMEOUT_MS (its connection is
 * closed) and the request is sent again, as is one that failed to connect; the last attempt may take the
 * rest of TIMEOUT_MS. Abandoning an attempt does not stop the work it started upstream: that is the
 * point of the scenario.
 *
 * Environment: PORT, UPSTREAM_URL; PER_TRY_TIMEOUT_MS [1000]; RETRIES [1]; TIMEOUT_MS [30000].
 */
import http from 'node:http';
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api';
import { ATTR, PROXY_COMPONENT } from 'waitgraph/schemas';
import { env, envInt, listen, type Service } from '../lib/http-service.js';
import type { Telemetry } from '../lib/telemetry.js';

const tracer = trace.getTracer('waitgraph-examples-sidecar');

interface Upstream {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** Sends one attempt upstream; rejects on a connection error or when `signal` aborts. */
function forward(url: URL, req: http.IncomingMessage, headers: Record<string, string>, body: Buffer, signal: AbortSignal): Promise<Upstream> {
  return new Promise((resolve, reject) => {
    const out = http.request(url, { method: req.method, headers, signal, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    out.on('error', reject);
    out.end(body);
  });
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'host', 'content-length', 'traceparent', 'tracestate']);

/** Starts the proxy. */
export async function start(telemetry: Telemetry): Promise<Service> {
  const upstream = new URL(env('UPSTREAM_URL'));
  const perTryMs = envInt('PER_TRY_TIMEOUT_MS', 1000);
  const retries = envInt('RETRIES', 1);
  const timeoutMs = envInt('TIMEOUT_MS', 30_000);
  const upstreamName = 'inventory';

  const server = http.createServer(async (req, res) => {
    if (req.url === '/healthz') {
      res.end('{"ok":true}');
      return;
    }
    const parent = propagation.extract(ROOT_CONTEXT, req.headers);
    const ingress = tracer.startSpan(
      `ingress ${req.method} ${req.url}`,
      { kind: SpanKind.SERVER, attributes: { [ATTR.COMPONENT]: PROXY_COMPONENT, 'http.request.method': req.method ?? 'GET', 'url.path': req.url ?? '/', 'upstream.cluster': upstreamName } },
      parent,
    );
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const deadline = Date.now() + timeoutMs;
    let answer: Upstream | undefined;
    let failure = '';
    for (let attempt = 0; attempt <= retries && answer === undefined; attempt++) {
      const last = attempt === retries;
      const egress: Span = tracer.startSpan(
        `egress ${req.method} ${req.url}`,
        {
          kind: SpanKind.CLIENT,
          attributes: {
            [ATTR.COMPONENT]: PROXY_COMPONENT,
            'http.request.method': req.method ?? 'GET',
            'url.full': new URL(req.url ?? '/', upstream).href,
            'server.address': upstream.hostname,
            'server.port': Number(upstream.port),
            'peer.service': upstreamName,
            ...(attempt > 0 ? { [ATTR.HTTP_RESEND_COUNT]: attempt } : {}),
          },
        },
        trace.setSpan(parent, ingress),
      );
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(k) && typeof v === 'string') headers[k] = v;
      propagation.inject(trace.setSpan(context.active(), egress), headers);
      const budget = last ? Math.max(1, deadline - Date.now()) : Math.min(perTryMs, Math.max(1, deadline - Date.now()));
      try {
        answer = await forward(new URL(req.url ?? '/', upstream), req, headers, body, AbortSignal.timeout(budget));
        egress.setAttribute('http.response.status_code', answer.status);
        if (answer.status >= 500) egress.setStatus({ code: SpanStatusCode.ERROR });
      } catch (err) {
        const timedOut = (err as Error).name === 'TimeoutError' || (err as Error).name === 'AbortError';
        failure = timedOut ? (last ? 'upstream timeout' : 'per-try timeout') : `upstream connect error: ${(err as Error).message}`;
        egress.setStatus({ code: SpanStatusCode.ERROR, message: failure });
        egress.setAttribute('error.type', timedOut ? 'timeout' : 'connect');
      } finally {
        egress.end();
      }
    }
    if (answer === undefined) {
      ingress.setStatus({ code: SpanStatusCode.ERROR, message: failure });
      ingress.setAttribute('http.response.status_code', 504);
      res.writeHead(504, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: failure, proxy: 'inventory-sidecar' }));
    } else {
      ingress.setAttribute('http.response.status_code', answer.status);
      if (answer.status >= 500) ingress.setStatus({ code: SpanStatusCode.ERROR });
      res.writeHead(answer.status, { 'content-type': String(answer.headers['content-type'] ?? 'application/json') });
      res.end(answer.body);
    }
    ingress.end();
  });
  return listen({ name: 'inventory-sidecar', port: envInt('PORT', 0), listener: server, telemetry });
}
