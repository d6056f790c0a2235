/**
 * What `waitgraph run` takes of an input: the OTLP payload decoded and cut to what detection reads, with the
 * counts of what came in; poison named as the decoders name it; and every recorded incident giving the same
 * findings through the cut as from its whole spans.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DecodeError } from '../../processor/src/decode/index.js';
import { Detector } from '../../processor/src/engine/index.js';
import type { DecodedBatch } from '../../processor/src/model/span.js';
import { decodeOtlpPayload, WaitInputCutter } from '../../processor/src/run/index.js';
import { buildWorkload } from '../../processor/bench/otlp-workload.js';

const SCENARIOS = new URL('../fixtures/scenarios/', import.meta.url);
const TASK_ATTRS = ['task.id', 'thread.id', 'task.detached', 'http.request.resend_count', 'component', 'span.partial'];

/** The findings of a detector fed the batches one by one, detecting after each. */
const findings = (batches: DecodedBatch[]) => batches.reduce((d, b) => (d.addBatch(b), d.detect(), d), new Detector()).findings();

describe('the wait-input cut', () => {
  it('keeps the spans detection reads, with only their task attributes, and counts what came in', () => {
    const cutter = new WaitInputCutter();
    const work = buildWorkload({ spans: 2_000, batchSize: 500, seed: 5 });
    const inputs = work.batches.map((bytes, i) => cutter.cut({ signal: 'traces', encoding: 'proto', bytes, name: `spans/0@${i}` }));
    const whole = work.batches.flatMap((bytes) => decodeOtlpPayload('traces', 'proto', bytes, 'x').spans);
    expect(inputs.reduce((n, x) => n + x.spans, 0)).toBe(work.spanCount);
    expect(inputs.reduce((n, x) => n + x.waitEvents, 0)).toBe(whole.flatMap((s) => s.events).filter((e) => /^(lock|pool)\./.test(e.name)).length);
    const kept = inputs.flatMap((x) => x.batch.spans);
    expect(kept.length).toBeLessThan(work.spanCount * 0.6);
    expect(kept.filter((s) => s.events.length > 0)).toHaveLength(whole.filter((s) => s.events.length > 0).length);
    expect(kept.every((s) => Object.keys(s.attributes).every((k) => TASK_ATTRS.includes(k)))).toBe(true);
  });

  it('ends a span it passed as a partial snapshot: its ended version goes through, though the cut alone would drop it', () => {
    // 1 span in 100 is first sent as a snapshot of an open span, and whole a batch later.
    const cutter = new WaitInputCutter();
    const work = buildWorkload({ spans: 4_000, batchSize: 500, seed: 5, services: 1, partialsEndAfter: 1 });
    const d = new Detector();
    work.batches.forEach((bytes, i) => {
      d.addBatch(cutter.cut({ signal: 'traces', encoding: 'proto', bytes, name: `spans/0@${i}` }).batch, (1_000 + i) * 1e6);
      d.detect();
    });
    expect(work.partialCount).toBeGreaterThan(20);
    // Every span has ended: none is left open to go stale, however long after.
    expect(d.expire(Number.MAX_SAFE_INTEGER, 1)).toBe(0);
  });

  it('names a payload it cannot decode as the decoder does', () => {
    const bad = Buffer.from('{"resourceSpans": [');
    const cut = () => new WaitInputCutter().cut({ signal: 'traces', encoding: 'json', bytes: bad, name: 'otlp_spans/2@7' });
    expect(cut).toThrow(DecodeError);
    expect(cut).toThrow(/^otlp_spans\/2@7:1:20: invalid JSON/);
    let expected: unknown;
    try {
      decodeOtlpPayload('traces', 'json', bad, 'otlp_spans/2@7');
    } catch (err) {
      expected = err;
    }
    expect(cut).toThrow((expected as Error).message);
  });
});

describe('every recorded incident through the wait-input cut', () => {
  const files = readdirSync(SCENARIOS).filter((f) => f.endsWith('.json')).sort();
  for (const file of files) {
    it(`${file}: the same findings as from the whole spans, in one message or one message a span`, () => {
      const cutter = new WaitInputCutter();
      const bytes = readFileSync(new URL(file, SCENARIOS));
      const whole = decodeOtlpPayload('traces', 'json', bytes, file);
      expect(findings([cutter.cut({ signal: 'traces', encoding: 'json', bytes, name: file }).batch])).toEqual(findings([whole]));
      // One span a message, as an exporter that sends each span alone: no ancestor travels with its child.
      const doc = JSON.parse(bytes.toString('utf8')) as { resourceSpans: { resource: unknown; scopeSpans: { scope?: unknown; spans: unknown[] }[] }[] };
      const singles = doc.resourceSpans.flatMap((rs) =>
        rs.scopeSpans.flatMap((ss) => ss.spans.map((span) => Buffer.from(JSON.stringify({ resourceSpans: [{ resource: rs.resource, scopeSpans: [{ scope: ss.scope, spans: [span] }] }] })))),
      );
      const oneByOne = singles.map((b) => decodeOtlpPayload('traces', 'json', b, file));
      const cutOneByOne = singles.map((b, i) => cutter.cut({ signal: 'traces', encoding: 'json', bytes: b, name: `${file}#${i}` }).batch);
      expect(findings(cutOneByOne)).toEqual(findings(oneByOne));
    });
  }
});
