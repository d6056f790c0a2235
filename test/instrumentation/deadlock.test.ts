/**
 * Two real in-process HTTP services that deadlock over HTTP, under a plain NodeSDK configured with the
 * one documented line (`spanProcessors: [new BatchSpanProcessor(...), waitgraphSnapshots(exporter)]`):
 *
 *   client → A /outer: holds MA (waitgraph Mutex), calls B /inner with fetch (undici)
 *   client → B /outer: holds MB (async-mutex Mutex), calls A /inner with http.get
 *   A /inner waits for MA (held by A /outer); B /inner waits for MB (held by B /outer)
 *
 * A true cycle: A/outer → rpc → B/inner → MB → B/outer → rpc → A/inner → MA → A/outer. The ended-span
 * exporter shows nothing of it; the snapshots of the hung spans (span.partial, the open lock.wait, the
 * open rpc.wait) reach the exporter within 2 s while every span still hangs. Then A /inner gives up (its
 * AbortSignal), the cycle unwinds, and everything ends and is cleaned up.
 */
import { once } from 'node:events';
import type * as Http from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { SpanKind, trace } from '@opentelemetry/api';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { BatchSpanProcessor, InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace';
import { Mutex as AsyncMutexMutex } from 'async-mutex';
import { afterAll, expect, it } from 'vitest';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { ATTR, EVENT } from '../../schemas/index.js';
import { decodeOtlpTracesProto } from '../../processor/src/decode/index.js';
import { Detector } from '../../processor/src/engine/index.js';
import {
  instrumentAsyncMutex,
  Mutex,
  waitgraphHttpConfig,
  waitgraphSnapshots,
  waitgraphUndiciConfig,
} from '../../instrumentation/index.js';
import { sleep } from './support/tracing.js';

const exporter = new InMemorySpanExporter();
const sdk = new NodeSDK({
  serviceName: 'deadlock-test',
  spanProcessors: [new BatchSpanProcessor({ exporter }), waitgraphSnapshots(exporter)],
  instrumentations: [new HttpInstrumentation(waitgraphHttpConfig()), new UndiciInstrumentation(waitgraphUndiciConfig())],
  logRecordProcessors: [],
  metricReaders: [],
});
sdk.start();
// required after start, so that the http instrumentation's require hook patches it
const http = createRequire(import.meta.url)('node:http') as typeof Http;

const servers: Http.Server[] = [];
afterAll(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
  await sdk.shutdown();
});

/** Resolves once `n` parties have arrived. */
function barrier(n: number): { arrive: () => Promise<void> } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  let arrived = 0;
  return {
    arrive: () => {
      if (++arrived === n) open();
      return opened;
    },
  };
}

async function listen(handler: Http.RequestListener): Promise<string> {
  const server = http.createServer(handler);
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** GET `url` with node:http; resolves to status and body. */
function httpGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      })
      .on('error', reject);
  });
}

const spanId = (s: ReadableSpan) => s.spanContext().spanId;

it('shows two services deadlocked over HTTP through snapshots within 2 s, while the spans hang', async () => {
  const MA = new Mutex({ id: 'service-a/MA' });
  // ESM import of async-mutex: no require hook sees it, so it is wrapped explicitly
  const MB = instrumentAsyncMutex(new AsyncMutexMutex(), { id: 'service-b/MB' });
  const bothHold = barrier(2);
  const bothInnerWaiting = barrier(2);
  const giveUpA = new AbortController();
  let urlA = '';
  let urlB = '';

  urlA = await listen(async (req, res) => {
    if (req.url === '/outer') {
      const body = await MA.runExclusive(async () => {
        await bothHold.arrive();
        const reply = await fetch(`${urlB}/inner`);
        return `A/outer got ${reply.status} ${await reply.text()}`;
      });
      res.end(body);
    } else {
      void bothInnerWaiting.arrive();
      try {
        await MA.runExclusive(() => undefined, { signal: giveUpA.signal });
        res.end('A/inner ok');
      } catch {
        res.statusCode = 503;
        res.end('A/inner gave up');
      }
    }
  });
  urlB = await listen(async (req, res) => {
    if (req.url === '/outer') {
      const body = await MB.runExclusive(async () => {
        await bothHold.arrive();
        const reply = await httpGet(`${urlA}/inner`);
        return `B/outer got ${reply.status} ${reply.body}`;
      });
      res.end(body);
    } else {
      void bothInnerWaiting.arrive();
      await MB.runExclusive(() => undefined);
      res.end('B/inner ok');
    }
  });

  // The two client calls start from outside any span: each request is a trace of its own.
  const outerA = fetch(`${urlA}/outer`).then(async (r) => `${r.status} ${await r.text()}`);
  const outerB = httpGet(`${urlB}/outer`).then((r) => `${r.status} ${r.body}`);
  await bothInnerWaiting.arrive();
  const deadlockedAt = Date.now();

  // --- while it hangs: snapshots, and no ended span of the cycle ---
  const isInner = (s: ReadableSpan) => s.kind === SpanKind.SERVER && String(s.attributes['url.path']) === '/inner';
  const isOuter = (s: ReadableSpan) => s.kind === SpanKind.SERVER && String(s.attributes['url.path']) === '/outer';
  const hasOpen = (s: ReadableSpan, name: string, id: string) =>
    s.events.some((e) => e.name === name && e.attributes?.[ATTR.LOCK_ID] === id);
  let snaps: ReadableSpan[] = [];
  const wanted = () => {
    snaps = exporter.getFinishedSpans().filter((s) => !s.ended);
    const innerA = snaps.find((s) => isInner(s) && hasOpen(s, EVENT.LOCK_WAIT, 'service-a/MA'));
    const innerB = snaps.find((s) => isInner(s) && hasOpen(s, EVENT.LOCK_WAIT, 'service-b/MB'));
    const outerHoldsA = snaps.find((s) => isOuter(s) && hasOpen(s, EVENT.LOCK_ACQUIRE, 'service-a/MA'));
    const outerHoldsB = snaps.find((s) => isOuter(s) && hasOpen(s, EVENT.LOCK_ACQUIRE, 'service-b/MB'));
    const clients = snaps.filter((s) => s.kind === SpanKind.CLIENT && s.events.some((e) => e.name === EVENT.RPC_WAIT));
    return innerA && innerB && outerHoldsA && outerHoldsB && clients.length >= 2
      ? { innerA, innerB, outerHoldsA, outerHoldsB, clients }
      : undefined;
  };
  let seen = wanted();
  while (seen === undefined && Date.now() - deadlockedAt < 2000) {
    await sleep(50);
    seen = wanted();
  }
  const elapsed = Date.now() - deadlockedAt;
  expect(seen, `snapshots after ${elapsed} ms: ${snaps.map((s) => `${s.name}[${s.events.map((e) => e.name)}]`).join(', ')}`).toBeDefined();
  expect(elapsed).toBeLessThan(2000);
  const { innerA, innerB, outerHoldsA, outerHoldsB, clients } = seen!;

  for (const s of [innerA, innerB, outerHoldsA, outerHoldsB, ...clients]) {
    expect(s.attributes[ATTR.SPAN_PARTIAL]).toBe(true);
    expect(s.endTime).toEqual([0, 0]);
  }
  // the waits are still open in the snapshots: a lock.wait with no acquire, an rpc.wait with no done
  expect(innerA.events.map((e) => e.name)).toEqual([EVENT.LOCK_WAIT]);
  expect(innerB.events.map((e) => e.name)).toEqual([EVENT.LOCK_WAIT]);
  for (const c of clients) expect(c.events.map((e) => e.name)).toEqual([EVENT.RPC_WAIT]);
  // the cycle is in the trace structure: each inner SERVER span is the child of the other side's CLIENT span,
  // whose parent is the outer SERVER span that holds the lock the inner one waits for
  const clientOf = (server: ReadableSpan) => clients.find((c) => spanId(c) === server.parentSpanContext?.spanId);
  expect(clientOf(innerB)?.parentSpanContext?.spanId).toBe(spanId(outerHoldsA));
  expect(clientOf(innerA)?.parentSpanContext?.spanId).toBe(spanId(outerHoldsB));
  expect(snaps.map((s) => s.resource.attributes[ATTR.SERVICE_NAME])).toContain('deadlock-test');

  // and the detector finds the deadlock in these snapshots, encoded as the OTLP exporter sends them
  const detector = new Detector();
  detector.addBatch(decodeOtlpTracesProto(ProtobufTraceSerializer.serializeRequest(snaps)!));
  const opened = detector.detect().filter((c) => c.change === 'opened');
  expect(opened).toHaveLength(1);
  expect(opened[0].finding.resources).toEqual(['service-a/MA', 'service-b/MB']);

  // still hanging: nothing of the cycle has ended, even after a flush of the batch processor
  await (trace.getTracerProvider() as unknown as { getDelegate(): { forceFlush(): Promise<void> } }).getDelegate().forceFlush();
  const cycle = new Set([innerA, innerB, outerHoldsA, outerHoldsB, ...clients].map(spanId));
  expect(exporter.getFinishedSpans().filter((s) => s.ended && cycle.has(spanId(s)))).toEqual([]);

  // --- break it: A/inner gives up; the cycle unwinds ---
  giveUpA.abort(new Error('deadlock broken'));
  expect(await outerB).toBe('200 B/outer got 503 A/inner gave up');
  expect(await outerA).toBe('200 A/outer got 200 B/inner ok');
  await (trace.getTracerProvider() as unknown as { getDelegate(): { forceFlush(): Promise<void> } }).getDelegate().forceFlush();
  const ended = exporter.getFinishedSpans().filter((s) => s.ended && cycle.has(spanId(s)));
  expect(ended).toHaveLength(cycle.size);
  const endedA = ended.find((s) => spanId(s) === spanId(innerA))!;
  expect(endedA.events.map((e) => e.name)).toEqual([EVENT.LOCK_WAIT, EVENT.LOCK_TIMEOUT]);
  const endedB = ended.find((s) => spanId(s) === spanId(innerB))!;
  expect(endedB.events.map((e) => e.name)).toEqual([EVENT.LOCK_WAIT, EVENT.LOCK_ACQUIRE, EVENT.LOCK_RELEASE]);
  for (const c of ended.filter((s) => s.kind === SpanKind.CLIENT)) {
    expect(c.events.map((e) => e.name)).toEqual([EVENT.RPC_WAIT, EVENT.RPC_DONE]);
  }
  // and no snapshot of them once they have ended
  const countSnaps = () => exporter.getFinishedSpans().filter((s) => !s.ended && cycle.has(spanId(s))).length;
  const before = countSnaps();
  await sleep(1500);
  expect(countSnaps()).toBe(before);
});
