/**
 * What waitgraph's worker threads send the event loop of their garbage collections (run/threads.ts):
 * `relayGc` on the thread, `takeWireMetric` on the event loop.
 */
import { constants, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { relayGc, takeWireMetric, type ThreadMetrics, type WireMetric } from '../../processor/src/run/threads.js';
import { waitFor } from '../io/kafka-helpers.js';

/** Metrics that note what they are given. */
function notingMetrics() {
  const seen: { name: string; labels: Record<string, string>; value: number }[] = [];
  const metrics: ThreadMetrics = {
    badInput: { inc: (labels, value) => seen.push({ name: 'badInput', labels, value: value ?? 1 }) },
    consumerLag: { set: (labels, value) => seen.push({ name: 'consumerLag', labels, value }) },
    spansReceived: { inc: (value) => seen.push({ name: 'spansReceived', labels: {}, value: value ?? 1 }) },
    threadGc: { observe: (labels, value) => seen.push({ name: 'threadGc', labels, value }) },
  };
  return { seen, metrics };
}

describe("a thread's garbage collections", () => {
  it('are sent as they happen, each with its kind and seconds', async () => {
    // What node observes of the same collections, to hold the relayed ones to.
    const observed: { kind: number; ms: number }[] = [];
    const own = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) observed.push({ kind: (e as PerformanceEntry & { detail: { kind: number } }).detail.kind, ms: e.duration });
    });
    own.observe({ entryTypes: ['gc'] });
    const sent: WireMetric[] = [];
    const observer = relayGc((m) => sent.push(m));
    try {
      let keep: unknown[] = [];
      await waitFor('a collection', async () => {
        // Garbage until the young generation is collected.
        for (let i = 0; i < 200_000; i++) keep.push({ i, s: `x${i}` });
        keep = [];
        return sent.length > 0 && observed.length >= sent.length;
      });
    } finally {
      observer.disconnect();
      own.disconnect();
    }
    // The names nodejs_gc_duration_seconds gives the kinds.
    const names = new Map([
      [constants.NODE_PERFORMANCE_GC_MAJOR, 'major'],
      [constants.NODE_PERFORMANCE_GC_MINOR, 'minor'],
      [constants.NODE_PERFORMANCE_GC_INCREMENTAL, 'incremental'],
      [constants.NODE_PERFORMANCE_GC_WEAKCB, 'weakcb'],
    ]);
    expect(sent.length).toBeGreaterThan(0);
    expect(sent).toEqual(observed.slice(0, sent.length).map((o) => ({ t: 'metric', name: 'gc', labels: { kind: names.get(o.kind) }, value: o.ms / 1000 })));
  });

  it("reach the event loop's metrics under the thread's name; other updates go where they did", () => {
    const { seen, metrics } = notingMetrics();
    takeWireMetric(metrics, { t: 'metric', name: 'gc', labels: { kind: 'minor' }, value: 0.004 }, 'kafka');
    takeWireMetric(metrics, { t: 'metric', name: 'gc', labels: { kind: 'major' }, value: 0.02 }, 'decode');
    takeWireMetric(metrics, { t: 'metric', name: 'spansReceived', labels: {}, value: 500 }, 'kafka');
    takeWireMetric(metrics, { t: 'metric', name: 'badInput', labels: { reason: 'decode' }, value: 1 }, 'kafka');
    expect(seen).toEqual([
      { name: 'threadGc', labels: { thread: 'kafka', kind: 'minor' }, value: 0.004 },
      { name: 'threadGc', labels: { thread: 'decode', kind: 'major' }, value: 0.02 },
      { name: 'spansReceived', labels: {}, value: 500 },
      { name: 'badInput', labels: { reason: 'decode' }, value: 1 },
    ]);
    // Metrics without a place for collections (a stage on the event loop) take the rest all the same.
    const { threadGc: _, ...withoutGc } = metrics;
    expect(() => takeWireMetric(withoutGc, { t: 'metric', name: 'gc', labels: { kind: 'minor' }, value: 0.001 }, 'kafka')).not.toThrow();
  });
});
