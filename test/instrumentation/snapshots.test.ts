/**
 * The snapshot processor under a real SDK: snapshots of running spans with an open wait or hold, at most
 * once per interval, never after the span ended, and encoded by the real OTLP serializer with no end time.
 */
import { JsonTraceSerializer } from '@opentelemetry/otlp-transformer';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { ATTR, EVENT } from '../../schemas/index.js';
import { Mutex, WaitSnapshotSpanProcessor } from '../../instrumentation/index.js';
import { names, sleep, startTracing } from './support/tracing.js';

const INTERVAL = 200;
const tracing = startTracing({ intervalMillis: INTERVAL, minOpenMillis: 50, refreshMillis: 1000 });
const { tracer } = tracing;

beforeEach(() => tracing.exporter.reset());
afterAll(() => tracing.shutdown());

/** Snapshots exported so far of the span with id `spanId`. */
function snapshotsOf(spanId: string) {
  return tracing.snapshots().filter((s) => s.spanContext().spanId === spanId);
}

describe('WaitSnapshotSpanProcessor', () => {
  it('exports a snapshot of a span blocked on a lock while it hangs, and none once it has ended', async () => {
    const mutex = new Mutex({ id: 'hot-row' });
    const release = await mutex.acquire();
    const span = tracer.startSpan('blocked');
    const acquired = tracer.startActiveSpan('blocked-inner', async (inner) => {
      const r = await mutex.acquire();
      r();
      inner.end();
      return inner.spanContext().spanId;
    });
    await sleep(INTERVAL * 2 + 100);
    const hung = tracing.snapshots();
    expect(hung.length).toBeGreaterThanOrEqual(1);
    const snap = hung[0]!;
    expect(snap.name).toBe('blocked-inner');
    expect(snap.ended).toBe(false);
    expect(snap.endTime).toEqual([0, 0]);
    expect(snap.attributes[ATTR.SPAN_PARTIAL]).toBe(true);
    expect(names(snap)).toEqual([EVENT.LOCK_WAIT]);
    // unchanged, so not sent again within refreshMillis
    expect(hung.filter((s) => s.spanContext().spanId === snap.spanContext().spanId)).toHaveLength(1);
    // a running span with no wait is never snapshotted
    expect(hung.some((s) => s.spanContext().spanId === span.spanContext().spanId)).toBe(false);

    release();
    const spanId = await acquired;
    expect(spanId).toBe(snap.spanContext().spanId);
    const before = snapshotsOf(spanId).length;
    await sleep(INTERVAL * 3);
    expect(snapshotsOf(spanId)).toHaveLength(before);
    expect(tracing.ended().filter((s) => s.spanContext().spanId === spanId)).toHaveLength(1);
    span.end();
  });

  it('sends the running ancestors of a blocked span with it, which link the chain, and nothing else', async () => {
    const mutex = new Mutex({ id: 'ancestors-row' });
    const release = await mutex.acquire();
    const bystander = tracer.startSpan('bystander');
    const ids: Record<string, string> = {};
    const done = tracer.startActiveSpan('request', (request) => {
      ids.request = request.spanContext().spanId;
      return tracer.startActiveSpan('handler', (handler) => {
        ids.handler = handler.spanContext().spanId;
        return tracer.startActiveSpan('transaction', async (tx) => {
          ids.tx = tx.spanContext().spanId;
          const r = await mutex.acquire();
          r();
          tx.end();
          handler.end();
          request.end();
        });
      });
    });
    await sleep(INTERVAL * 2 + 100);
    const hung = tracing.snapshots();
    const byName = new Map(hung.map((s) => [s.name, s]));
    expect([...byName.keys()].sort()).toEqual(['handler', 'request', 'transaction']);
    expect(names(byName.get('transaction')!)).toEqual([EVENT.LOCK_WAIT]);
    expect(byName.get('handler')!.parentSpanContext?.spanId).toBe(ids.request);
    expect(byName.get('transaction')!.parentSpanContext?.spanId).toBe(ids.handler);
    for (const snap of [byName.get('request')!, byName.get('handler')!]) {
      expect(snap.attributes[ATTR.SPAN_PARTIAL]).toBe(true);
      expect(snap.events).toEqual([]);
    }
    // unchanged: each sent once within refreshMillis
    for (const id of Object.values(ids)) expect(snapshotsOf(id)).toHaveLength(1);

    release();
    await done;
    await sleep(INTERVAL * 3);
    for (const id of Object.values(ids)) expect(snapshotsOf(id)).toHaveLength(1);
    expect(snapshotsOf(bystander.spanContext().spanId)).toEqual([]);
    bystander.end();
  });

  it('sends a changed span again at most once per interval, and an unchanged one after refreshMillis', async () => {
    const span = tracer.startSpan('waiter');
    const started = Date.now();
    // waits that stay open, a new one every 20 ms
    const timer = setInterval(() => span.addEvent(EVENT.LOCK_WAIT, { [ATTR.LOCK_ID]: 'busy' }), 20);
    await sleep(INTERVAL * 5 + 50);
    clearInterval(timer);
    const changing = snapshotsOf(span.spanContext().spanId).length;
    const ticks = Math.floor((Date.now() - started) / INTERVAL);
    // re-sent as it changes (a loaded machine may skip a tick), never more than once per interval
    expect(changing).toBeGreaterThanOrEqual(2);
    expect(changing).toBeLessThanOrEqual(ticks);
    // unchanged from now on: one refresh after refreshMillis (1000 ms), not one per tick
    await sleep(1000 + INTERVAL * 2);
    const refreshed = snapshotsOf(span.spanContext().spanId).length - changing;
    expect(refreshed).toBeGreaterThanOrEqual(1);
    expect(refreshed).toBeLessThanOrEqual(2);
    span.end();
  });

  it('encodes a snapshot as OTLP with endTimeUnixNano 0 and span.partial', async () => {
    const mutex = new Mutex({ id: 'row' });
    const release = await mutex.acquire();
    const waiting = tracer.startActiveSpan('otlp', async (span) => {
      const r = await mutex.acquire();
      r();
      span.end();
    });
    await sleep(INTERVAL * 2 + 100);
    const snap = tracing.snapshots().find((s) => s.name === 'otlp')!;
    const body = JSON.parse(new TextDecoder().decode(JsonTraceSerializer.serializeRequest([snap])));
    const otlp = body.resourceSpans[0].scopeSpans[0].spans[0];
    expect(Number(otlp.endTimeUnixNano ?? 0)).toBe(0);
    expect(otlp.spanId).toBe(snap.spanContext().spanId);
    expect(otlp.attributes).toContainEqual({ key: ATTR.SPAN_PARTIAL, value: { boolValue: true } });
    expect(otlp.events.map((e: { name: string }) => e.name)).toEqual([EVENT.LOCK_WAIT]);
    release();
    await waiting;
  });

  it('validates options, shuts down idempotently, and flushes', async () => {
    expect(() => new WaitSnapshotSpanProcessor(new InMemorySpanExporter(), { intervalMillis: 0 })).toThrow(
      expect.objectContaining({ code: 'bad-config', message: expect.stringContaining('intervalMillis') }),
    );
    const processor = new WaitSnapshotSpanProcessor(new InMemorySpanExporter());
    await processor.forceFlush();
    await Promise.all([processor.shutdown(), processor.shutdown()]);
    await processor.shutdown();
  });
});
