/**
 * RPC waits on the CLIENT spans of @opentelemetry/instrumentation-http and -undici, against real HTTP
 * servers: a reply ends the wait with rpc.done, so does a failed call; an abort or a client timeout
 * ends it with rpc.timeout; peer service and intake pool come from the options.
 */
import { once } from 'node:events';
import type * as Http from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { SpanKind } from '@opentelemetry/api';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ATTR, EVENT, EVENT_NAMES, type EventName } from '../../schemas/index.js';
import { waitgraphHttpConfig, waitgraphUndiciConfig, type RpcTarget } from '../../instrumentation/index.js';
import { inSpan, names, sleep, startTracing } from './support/tracing.js';

/** The wait events of a span (the instrumentations add `exception` events of their own). */
function waits(span: ReadableSpan): string[] {
  return names(span).filter((n) => EVENT_NAMES.includes(n as EventName));
}

const tracing = startTracing();
const { tracer } = tracing;
const peers = { peerService: (t: RpcTarget) => (t.path.startsWith('/slow') ? 'slow-service' : 'echo-service'), intakePool: () => 'echo-workers' };
const seenByUserHook: string[] = [];
const instrumentations = [
  new HttpInstrumentation(waitgraphHttpConfig({ requestHook: () => void seenByUserHook.push('http') }, peers)),
  new UndiciInstrumentation(waitgraphUndiciConfig({}, peers)),
];
const http = createRequire(import.meta.url)('node:http') as typeof Http;

let base = '';
let server: Http.Server;
beforeAll(async () => {
  server = http.createServer((req, res) => {
    if (req.url?.startsWith('/slow')) setTimeout(() => res.end('late'), 500).unref();
    else res.end('echo');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
beforeEach(() => tracing.exporter.reset());
afterAll(async () => {
  server.closeAllConnections();
  server.close();
  for (const i of instrumentations) i.disable();
  await tracing.shutdown();
});

/** The CLIENT spans ended inside the span named `parent`. */
function clientSpansOf(parent: string): ReadableSpan[] {
  const p = tracing.ended().find((s) => s.name === parent)!;
  return tracing.ended().filter((s) => s.kind === SpanKind.CLIENT && s.parentSpanContext?.spanId === p.spanContext().spanId);
}

/** GET with node:http, with options; resolves to the body or rejects with the error. */
function get(url: string, options: Http.RequestOptions = {}, onRequest?: (req: Http.ClientRequest) => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, options, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    onRequest?.(req);
  });
}

describe('node:http client calls', () => {
  it('records rpc.wait with peer and intake pool, then rpc.done on the reply', async () => {
    expect(await inSpan(tracer, 'caller', () => get(`${base}/echo`))).toBe('echo');
    const [client] = clientSpansOf('caller');
    expect(waits(client!)).toEqual([EVENT.RPC_WAIT, EVENT.RPC_DONE]);
    expect(client!.events[0]!.attributes).toEqual({ [ATTR.RPC_PEER_SERVICE]: 'echo-service', [ATTR.POOL_NAME]: 'echo-workers' });
    expect(seenByUserHook).toContain('http');
  });

  it('records rpc.timeout when the caller times out and destroys the request', async () => {
    const call = inSpan(tracer, 'impatient', () =>
      get(`${base}/slow`, { timeout: 50 }, (req) => req.on('timeout', () => req.destroy(new Error('gave up')))),
    );
    await expect(call).rejects.toThrow('gave up');
    const [client] = clientSpansOf('impatient');
    expect(waits(client!)).toEqual([EVENT.RPC_WAIT, EVENT.RPC_TIMEOUT]);
  });

  it('records rpc.timeout on an AbortSignal, and rpc.done when the call fails on its own', async () => {
    await expect(inSpan(tracer, 'aborted', () => get(`${base}/slow`, { signal: AbortSignal.timeout(50) }))).rejects.toMatchObject({
      name: 'AbortError',
    });
    expect(waits(clientSpansOf('aborted')[0]!)).toEqual([EVENT.RPC_WAIT, EVENT.RPC_TIMEOUT]);
    // nothing listens on port 9 (discard) of loopback: connection refused is an answer, not a give-up
    await expect(inSpan(tracer, 'refused', () => get('http://127.0.0.1:9/'))).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(waits(clientSpansOf('refused')[0]!)).toEqual([EVENT.RPC_WAIT, EVENT.RPC_DONE]);
  });
});

describe('fetch (undici) calls', () => {
  it('records rpc.wait then rpc.done on the reply', async () => {
    const body = await inSpan(tracer, 'fetcher', async () => (await fetch(`${base}/echo`)).text());
    expect(body).toBe('echo');
    const [client] = clientSpansOf('fetcher');
    expect(waits(client!)).toEqual([EVENT.RPC_WAIT, EVENT.RPC_DONE]);
    expect(client!.events[0]!.attributes![ATTR.RPC_PEER_SERVICE]).toBe('echo-service');
  });

  it('records rpc.timeout when the fetch is aborted', async () => {
    await expect(inSpan(tracer, 'aborting', () => fetch(`${base}/slow`, { signal: AbortSignal.timeout(50) }))).rejects.toMatchObject({
      name: 'TimeoutError',
    });
    await sleep(20);
    expect(waits(clientSpansOf('aborting')[0]!)).toEqual([EVENT.RPC_WAIT, EVENT.RPC_TIMEOUT]);
  });
});
