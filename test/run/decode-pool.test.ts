/**
 * The decode pool of `waitgraph run`: OTLP payloads decoded and cut to what detection reads, on a worker
 * thread or on the event loop, with the same result either way; poison named as the decoders name it; and
 * every recorded incident giving the same findings through the pool as from its whole spans.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DecodeError } from '../../processor/src/decode/index.js';
import { Detector } from '../../processor/src/engine/index.js';
import type { DecodedBatch } from '../../processor/src/model/span.js';
import { DecodePool, decodeOtlpPayload, type OtlpPayload, type WaitInput } from '../../processor/src/run/index.js';
import { buildWorkload } from '../../processor/bench/otlp-workload.js';

const SCENARIOS = new URL('../fixtures/scenarios/', import.meta.url);

const threaded = new DecodePool({ threads: 1 });
const inThread = new DecodePool({ threads: 0 });
beforeAll(async () => {
  await Promise.all([threaded.start(), inThread.start()]);
});
afterAll(async () => {
  await Promise.all([threaded.shutdown(), inThread.shutdown()]);
});

async function cut(pool: DecodePool, payloads: OtlpPayload[]): Promise<WaitInput[]> {
  return (await pool.decode(payloads)).map((o) => {
    if ('error' in o) throw o.error;
    return o.value;
  });
}

/** The findings of a detector fed the batches one by one, detecting after each. */
const findings = (batches: DecodedBatch[]) => batches.reduce((d, b) => (d.addBatch(b), d.detect(), d), new Detector()).findings();

describe('the decode pool', () => {
  it('cuts protobuf to what detection reads, the same on a worker thread as on the event loop, and counts what came in', async () => {
    const work = buildWorkload({ spans: 2_000, batchSize: 500, seed: 5 });
    const payloads = work.batches.map((bytes, i): OtlpPayload => ({ signal: 'traces', encoding: 'proto', bytes, name: `spans/0@${i}` }));
    const [a, b] = [await cut(threaded, payloads), await cut(inThread, payloads)];
    expect(a).toEqual(b);
    expect(a.reduce((n, x) => n + x.spans, 0)).toBe(work.spanCount);
    const whole = work.batches.map((bytes) => decodeOtlpPayload('traces', 'proto', bytes, 'x'));
    const waitEvents = whole.flatMap((w) => w.spans.flatMap((s) => s.events)).filter((e) => /^(lock|pool)\./.test(e.name)).length;
    expect(a.reduce((n, x) => n + x.waitEvents, 0)).toBe(waitEvents);
    // Kept: fewer spans than came in, every one with wait events among them, with only the task attributes.
    const kept = a.flatMap((x) => x.batch.spans);
    expect(kept.length).toBeLessThan(work.spanCount);
    expect(kept.filter((s) => s.events.length > 0).length).toBe(whole.flatMap((w) => w.spans).filter((s) => s.events.length > 0).length);
    expect(kept.every((s) => Object.keys(s.attributes).every((k) => ['task.id', 'thread.id', 'task.detached', 'http.request.resend_count', 'component', 'span.partial'].includes(k)))).toBe(true);
  });

  it('names a payload it cannot decode as the decoder does, and decodes the rest of the batch', async () => {
    const good = readFileSync(new URL('01-cross-service-ab-ba.json', SCENARIOS));
    const bad = Buffer.from('{"resourceSpans": [');
    for (const pool of [threaded, inThread]) {
      const [first, second] = await pool.decode([
        { signal: 'traces', encoding: 'json', bytes: bad, name: 'otlp_spans/2@7' },
        { signal: 'traces', encoding: 'json', bytes: good, name: 'otlp_spans/2@8' },
      ]);
      expect('error' in first! && first.error).toBeInstanceOf(DecodeError);
      let expected: unknown;
      try {
        decodeOtlpPayload('traces', 'json', bad, 'otlp_spans/2@7');
      } catch (err) {
        expected = err;
      }
      expect('error' in first! && first.error.message).toBe((expected as Error).message);
      expect('error' in first! && first.error.code).toBe('bad-input');
      expect('value' in second! && second.value.spans).toBeGreaterThan(0);
    }
  });

  it('refuses to decode after shutdown', async () => {
    const pool = new DecodePool({ threads: 1 });
    await pool.start();
    await pool.shutdown();
    await expect(pool.decode([{ signal: 'traces', encoding: 'json', bytes: Buffer.from('{}'), name: 'x' }])).rejects.toThrow(/shutdown/);
  });
});

describe('every recorded incident through the decode pool', () => {
  const files = readdirSync(SCENARIOS).filter((f) => f.endsWith('.json')).sort();
  for (const file of files) {
    it(`${file}: the same findings as from the whole spans, in one message or one message a span`, async () => {
      const bytes = readFileSync(new URL(file, SCENARIOS));
      const whole = decodeOtlpPayload('traces', 'json', bytes, file);
      const expected = findings([whole]);
      const [all] = await cut(threaded, [{ signal: 'traces', encoding: 'json', bytes, name: file }]);
      expect(findings([all!.batch])).toEqual(expected);
      // One span a message, as an exporter that sends each span alone: no ancestor travels with its child.
      const doc = JSON.parse(bytes.toString('utf8')) as { resourceSpans: { resource: unknown; scopeSpans: { scope?: unknown; spans: unknown[] }[] }[] };
      const singles = doc.resourceSpans.flatMap((rs) =>
        rs.scopeSpans.flatMap((ss) => ss.spans.map((span) => Buffer.from(JSON.stringify({ resourceSpans: [{ resource: rs.resource, scopeSpans: [{ scope: ss.scope, spans: [span] }] }] })))),
      );
      const oneByOne = singles.map((b) => decodeOtlpPayload('traces', 'json', b, file));
      const cutOneByOne = await cut(threaded, singles.map((b, i) => ({ signal: 'traces', encoding: 'json', bytes: b, name: `${file}#${i}` })));
      expect(findings(cutOneByOne.map((x) => x.batch))).toEqual(findings(oneByOne));
    });
  }
});
