/**
 * The benchmark workload's partial snapshots: by default the last word on their span; with
 * `partialsEndAfter`, each span comes again, ended, that many batches later in its service's batch, as a
 * live emitter exports an in-progress span and then the whole span.
 */
import { describe, expect, it } from 'vitest';
import { generateSpanBatches } from '../../processor/bench/otlp-workload.js';

describe('otlp-workload partial snapshots', () => {
  it('ends each partial snapshot later, in the same service, when asked', () => {
    const batches = generateSpanBatches({ spans: 20_000, batchSize: 500, partialsEndAfter: 20 });
    const open = new Map<string, { batch: number; service: unknown; start: unknown }>();
    let ended = 0;
    batches.forEach((batch, i) => {
      for (const s of batch) {
        const id = s.spanContext().spanId;
        if (!s.ended) {
          expect(s.attributes['span.partial']).toBe(true);
          open.set(id, { batch: i, service: s.resource, start: s.startTime });
          continue;
        }
        const snap = open.get(id);
        if (snap === undefined) continue;
        expect(i - snap.batch).toBe(20);
        expect(s.resource).toBe(snap.service);
        expect(s.startTime).toEqual(snap.start);
        expect(s.attributes['span.partial']).toBeUndefined();
        open.delete(id);
        ended++;
      }
    });
    expect(ended).toBe(200 - 20 * 5); // one in 100 of the spans, but for those of the last 20 batches
    expect(open.size).toBe(0); // none left hanging: spans that would end after the last batch are not made partial
  });

  it('leaves partial snapshots as they are by default', () => {
    const batches = generateSpanBatches({ spans: 20_000, batchSize: 500 });
    const ids = new Set<string>();
    let partial = 0;
    for (const b of batches) {
      for (const s of b) {
        const id = s.spanContext().spanId;
        expect(ids.has(id)).toBe(false);
        ids.add(id);
        if (!s.ended) partial++;
      }
    }
    expect(partial).toBe(200);
  });
});
