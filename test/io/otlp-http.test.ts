/**
 * The OTLP/HTTP receiver as a client sees it: real OTLP payloads from the OpenTelemetry SDK's serializers,
 * over real HTTP, decoded by the processor's decoders.
 */
import { request } from 'node:http';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeOtlpJson } from '../../processor/src/decode/otlp-json.js';
import { decodeOtlpLogsProto, decodeOtlpTracesProto } from '../../processor/src/decode/otlp-proto.js';
import { WaitgraphError } from '../../processor/src/errors.js';
import { OtlpHttpReceiver, ProcessorMetrics, silentLogger, type Health, type OtlpContentType, type OtlpSignal } from '../../processor/src/io/index.js';
import type { DecodedBatch } from '../../processor/src/model/span.js';
import { makeSpans, tracesJson, tracesProto, waitEventLog } from './otlp-payloads.js';
import { metricValue } from '../support/metrics.js';

interface Received {
  signal: OtlpSignal;
  contentType: OtlpContentType;
  body: Uint8Array;
  batch: DecodedBatch;
}

const receivers: OtlpHttpReceiver[] = [];
afterEach(async () => {
  await Promise.all(receivers.splice(0).map((r) => r.shutdown()));
});

/** A receiver on a free port whose handler decodes with the processor's decoders. */
async function startReceiver(options: { maxBodyBytes?: number; health?: () => Health; fail?: Error } = {}) {
  const received: Received[] = [];
  const metrics = new ProcessorMetrics({ processMetrics: false });
  const receiver = new OtlpHttpReceiver({
    port: 0,
    metrics,
    logger: silentLogger,
    maxBodyBytes: options.maxBodyBytes,
    health: options.health,
    handle: async (signal, body, contentType) => {
      if (options.fail) throw options.fail;
      const batch =
        contentType === 'json'
          ? decodeOtlpJson(new TextDecoder().decode(body), `http /v1/${signal}`)
          : signal === 'traces'
            ? decodeOtlpTracesProto(body, 'http /v1/traces')
            : decodeOtlpLogsProto(body, 'http /v1/logs');
      received.push({ signal, contentType, body, batch });
    },
  });
  receivers.push(receiver);
  const { url } = await receiver.start();
  return { url, received, metrics, receiver };
}

function post(url: string, body: Uint8Array, headers: Record<string, string>) {
  return fetch(url, { method: 'POST', body, headers });
}

const PROTO = { 'content-type': 'application/x-protobuf' };
const JSON_TYPE = { 'content-type': 'application/json' };

/** Decodes a `google.rpc.Status` protobuf: field 1 (code, varint) and field 2 (message, string). */
function decodeStatus(bytes: Uint8Array): { code: number; message: string } {
  let i = 0;
  const varint = () => {
    let n = 0;
    for (let shift = 0; ; shift += 7) {
      const b = bytes[i++]!;
      n |= (b & 0x7f) << shift;
      if (b < 0x80) return n;
    }
  };
  const out = { code: 0, message: '' };
  while (i < bytes.length) {
    const tag = varint();
    if (tag === 0x08) out.code = varint();
    else if (tag === 0x12) {
      const len = varint();
      out.message = new TextDecoder().decode(bytes.subarray(i, i + len));
      i += len;
    } else throw new Error(`unexpected tag ${tag}`);
  }
  return out;
}

describe('OTLP/HTTP receiver', () => {
  it('takes protobuf traces and answers with an empty protobuf response', async () => {
    const { url, received } = await startReceiver();
    const spans = await makeSpans(3);
    const res = await post(`${url}/v1/traces`, tracesProto(spans), PROTO);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-protobuf');
    expect((await res.arrayBuffer()).byteLength).toBe(0);
    expect(received).toHaveLength(1);
    expect(received[0]!.signal).toBe('traces');
    expect(received[0]!.contentType).toBe('proto');
    const batch = received[0]!.batch;
    expect(batch.spans.map((s) => s.name).sort()).toEqual(['work 0', 'work 1', 'work 2']);
    expect(batch.spans[0]!.resource['service.name']).toBe('checkout');
    expect(batch.spans.map((s) => s.events[0]!.attributes['lock.id']).sort()).toEqual(['orders/0', 'orders/1', 'orders/2']);
  });

  it('takes JSON traces and answers {}', async () => {
    const { url, received } = await startReceiver();
    const spans = await makeSpans(2);
    const res = await post(`${url}/v1/traces`, tracesJson(spans), { 'content-type': 'application/json; charset=utf-8' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(await res.json()).toEqual({});
    expect(received[0]!.contentType).toBe('json');
    expect(received[0]!.batch.spans.map((s) => s.spanId).sort()).toEqual(spans.map((s) => s.spanContext().spanId).sort());
  });

  it('inflates gzip bodies', async () => {
    const { url, received } = await startReceiver();
    const body = tracesProto(await makeSpans(4));
    const res = await post(`${url}/v1/traces`, gzipSync(body), { ...PROTO, 'content-encoding': 'gzip' });
    expect(res.status).toBe(200);
    expect(Buffer.from(received[0]!.body).equals(Buffer.from(body))).toBe(true);
    expect(received[0]!.batch.spans).toHaveLength(4);
  });

  it('takes wait events as log records on /v1/logs, protobuf and JSON', async () => {
    const { url, received } = await startReceiver();
    expect((await post(`${url}/v1/logs`, await waitEventLog('proto'), PROTO)).status).toBe(200);
    expect((await post(`${url}/v1/logs`, gzipSync(await waitEventLog('json')), { ...JSON_TYPE, 'content-encoding': 'gzip' })).status).toBe(200);
    expect(received.map((r) => [r.signal, r.contentType])).toEqual([
      ['logs', 'proto'],
      ['logs', 'json'],
    ]);
    for (const r of received) {
      expect(r.batch.logEvents.map((e) => [e.name, e.spanId, e.attributes['lock.id']])).toEqual([['lock.wait', 'eee19b7ec3c1b174', 'orders/1']]);
    }
  });

  it('answers 413 to a body over the limit, declared or streamed, and to a gzip bomb', async () => {
    const { url, received, metrics } = await startReceiver({ maxBodyBytes: 64 * 1024 });
    const big = new Uint8Array(100 * 1024);
    const declared = await post(`${url}/v1/traces`, big, PROTO);
    expect(declared.status).toBe(413);
    expect(decodeStatus(new Uint8Array(await declared.arrayBuffer())).message).toMatch(/body too large .*limit is 65536 bytes/);

    // Chunked, with no Content-Length: the limit is found while reading.
    const streamed = await new Promise<number>((ok, fail) => {
      const req = request(`${url}/v1/traces`, { method: 'POST', headers: JSON_TYPE }, (res) => {
        res.resume();
        ok(res.statusCode!);
      });
      req.on('error', fail);
      for (let i = 0; i < 10; i++) req.write(Buffer.alloc(16 * 1024, 0x20));
      req.end();
    });
    expect(streamed).toBe(413);

    const bomb = gzipSync(Buffer.alloc(10 * 1024 * 1024)); // about 10 KiB that inflate to 10 MiB
    expect(bomb.length).toBeLessThan(64 * 1024);
    const inflated = await post(`${url}/v1/traces`, bomb, { ...JSON_TYPE, 'content-encoding': 'gzip' });
    expect(inflated.status).toBe(413);
    expect(((await inflated.json()) as { message: string }).message).toMatch(/inflates to over 65536 bytes/);

    expect(received).toHaveLength(0);
    expect(await metricValue(metrics, 'waitgraph_bad_input_total', 'reason="too_large"')).toBe(3);
  });

  it('answers 400 with a clear message to payloads that do not decode', async () => {
    const { url, received, metrics } = await startReceiver();
    const proto = await post(`${url}/v1/traces`, Buffer.from('this is not protobuf'), PROTO);
    expect(proto.status).toBe(400);
    expect(proto.headers.get('content-type')).toBe('application/x-protobuf');
    const status = decodeStatus(new Uint8Array(await proto.arrayBuffer()));
    expect(status.code).toBe(3); // INVALID_ARGUMENT
    expect(status.message).toMatch(/^http \/v1\/traces: byte \d+: /);

    const json = await post(`${url}/v1/traces`, Buffer.from('{"resourceSpans": ['), JSON_TYPE);
    expect(json.status).toBe(400);
    const body = (await json.json()) as { code: number; message: string };
    expect(body.code).toBe(3);
    expect(body.message).toMatch(/invalid JSON/);

    const badGzip = await post(`${url}/v1/traces`, Buffer.from('not gzip at all'), { ...PROTO, 'content-encoding': 'gzip' });
    expect(badGzip.status).toBe(400);
    expect(decodeStatus(new Uint8Array(await badGzip.arrayBuffer())).message).toMatch(/does not inflate/);

    expect(received).toHaveLength(0);
    expect(await metricValue(metrics, 'waitgraph_bad_input_total', 'reason="decode"')).toBe(2);
    expect(await metricValue(metrics, 'waitgraph_bad_input_total', 'reason="bad_encoding"')).toBe(1);
  });

  it('answers 415 to other media types and encodings, 404 and 405 to other routes', async () => {
    const { url } = await startReceiver();
    const text = await post(`${url}/v1/traces`, Buffer.from('hello'), { 'content-type': 'text/plain' });
    expect(text.status).toBe(415);
    expect(((await text.json()) as { message: string }).message).toMatch(/Content-Type text\/plain not supported/);
    const br = await post(`${url}/v1/traces`, Buffer.from('x'), { ...PROTO, 'content-encoding': 'br' });
    expect(br.status).toBe(415);
    expect((await fetch(`${url}/v1/metrics`, { method: 'POST' })).status).toBe(404);
    const get = await fetch(`${url}/v1/traces`);
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
  });

  it('serves /healthz: 200 while ready, 503 (and 503 with Retry-After on export) while not', async () => {
    let health: Health = { ready: true, details: { tasks: 3 } };
    const { url, received } = await startReceiver({ health: () => health });
    const ok = await fetch(`${url}/healthz`);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ status: 'ok', tasks: 3 });
    health = { ready: false, details: { kafka: 'connecting' } };
    const down = await fetch(`${url}/healthz`);
    expect(down.status).toBe(503);
    expect(await down.json()).toEqual({ status: 'unavailable', kafka: 'connecting' });
    const refused = await post(`${url}/v1/traces`, tracesProto(await makeSpans(1)), PROTO);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(received).toHaveLength(0);
  });

  it('is ready by default once listening', async () => {
    const { url } = await startReceiver();
    expect(await (await fetch(`${url}/healthz`)).json()).toEqual({ status: 'ok' });
  });

  it('serves the processor metrics in the Prometheus text format at /metrics', async () => {
    const { url, metrics } = await startReceiver();
    metrics.spansReceived.inc(5);
    metrics.detectionLatency.observe(0.004);
    metrics.consumerLag.set({ topic: 'otlp_spans', partition: '2' }, 17);
    await post(`${url}/v1/traces`, Buffer.from('garbage'), PROTO);
    const res = await fetch(`${url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    expect(text).toContain('waitgraph_spans_received_total 5');
    expect(text).toContain('waitgraph_bad_input_total{reason="decode"} 1');
    expect(text).toContain('waitgraph_bad_input_total{reason="too_large"} 0');
    expect(text).toContain('waitgraph_consumer_lag{topic="otlp_spans",partition="2"} 17');
    expect(text).toContain('waitgraph_detection_latency_seconds_bucket{le="0.005"} 1');
    expect(text).toContain('waitgraph_detection_latency_seconds_bucket{le="0.0025"} 0');
    for (const name of ['waitgraph_wait_events_received_total', 'waitgraph_graph_tasks', 'waitgraph_graph_edges', 'waitgraph_findings_total']) {
      expect(text).toContain(`# TYPE ${name} `);
    }
  });

  it('answers 503 to a retriable failure of the handler and 500 to a bug, without its details', async () => {
    const retriable = await startReceiver({ fail: new WaitgraphError('broker', 'alert topic unavailable') });
    const r = await post(`${retriable.url}/v1/traces`, tracesProto(await makeSpans(1)), JSON_TYPE);
    expect(r.status).toBe(503);
    expect(((await r.json()) as { message: string }).message).toBe('alert topic unavailable');
    const bug = await startReceiver({ fail: new TypeError('x is undefined') });
    const b = await post(`${bug.url}/v1/traces`, Buffer.from('{}'), JSON_TYPE);
    expect(b.status).toBe(500);
    expect(await b.json()).toEqual({ code: 13, message: 'internal error' });
  });

  it('shuts down idempotently and frees its port', async () => {
    const { url, receiver } = await startReceiver();
    await Promise.all([receiver.shutdown(), receiver.shutdown()]);
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
  });
});
