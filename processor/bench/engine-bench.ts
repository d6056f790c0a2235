/**
 * The engine benchmark (`npm run bench`): a script, not a timed test. It prints its figures, and its last
 * line is a JSON object of them.
 *
 * - incremental cost: per-event latency (add one span version + detect) at 1k, 100k and 1M open tasks;
 * - throughput: spans/s on the analyze path (decode + ingest + detect) against decoding alone, on the
 *   same OTLP protobuf input, with 1 span in 10 carrying wait events;
 * - hidden cycle: 20,000 tasks in chains with one 50-service cycle hidden among them;
 * - memory: peak RSS with 1M open tasks.
 *
 * Run one part alone with `npm run bench -- latency|throughput|hidden|memory`.
 */
import { performance } from 'node:perf_hooks';
import { decodeOtlpTracesProto } from '../src/decode/index.js';
import { Detector } from '../src/engine/index.js';
import type { SpanRecord } from '../src/model/span.js';
import { buildWorkload } from './otlp-workload.js';

const BASE_NS = 1_763_700_000_000 * 1e6;
// Flat strings, as the decoders make them (padStart would leave rope strings behind).
const hex = (n: number, len: number) => Buffer.from(n.toString(16).padStart(len, '0'), 'latin1').toString('latin1');

/** An open span of task `i`, holding lock `L<i>`, and waiting for lock `L<wait>` where given. */
function taskSpan(i: number, wait: number | undefined, extra: SpanRecord['events'] = []): SpanRecord {
  const events: SpanRecord['events'] = [{ name: 'lock.acquire', timeUnixNano: BASE_NS + i, attributes: { 'lock.id': `L${i}` } }];
  if (wait !== undefined) events.push({ name: 'lock.wait', timeUnixNano: BASE_NS + i + 1, attributes: { 'lock.id': `L${wait}` } });
  events.push(...extra);
  return {
    traceId: hex(i + 1, 32),
    spanId: hex(i + 1, 16),
    parentSpanId: undefined,
    name: 'handle',
    kind: 2,
    startTimeUnixNano: BASE_NS + i,
    endTimeUnixNano: 0,
    attributes: { 'task.id': `t${i}`, 'span.partial': true },
    resource: { 'service.name': `svc-${i % 50}` },
    events,
  };
}

/** N open tasks in short chains (every third waits for the next one's lock; chain ends run). */
function populate(d: Detector, n: number): void {
  const batch: SpanRecord[] = [];
  for (let i = 0; i < n; i++) {
    batch.push(taskSpan(i, i % 3 !== 2 ? i + 1 : undefined));
    if (batch.length === 10_000) d.addSpans(batch.splice(0));
  }
  d.addSpans(batch);
  d.detect();
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** Per-event latency: one new snapshot (a wait on a random lock, or a release) and detect(). */
function latency(n: number, samples = 20_000): { openTasks: number; medianUs: number; p99Us: number } {
  const d = new Detector();
  populate(d, n);
  let seed = 42;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const times: number[] = [];
  for (let k = 0; k < samples; k++) {
    const i = n + k; // a new task each time: the graph keeps growing by one
    const target = Math.floor(rnd() * n);
    const span = taskSpan(i, target);
    const t0 = performance.now();
    d.addSpans([span]);
    d.detect();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return { openTasks: n, medianUs: +(quantile(times, 0.5) * 1e3).toFixed(2), p99Us: +(quantile(times, 0.99) * 1e3).toFixed(2) };
}

/** 20,000 tasks in chains of 40 ending in a running task, and one 50-service cycle hidden among them. */
function hiddenCycle(): { tasks: number; seconds: number; found: number; cycleTasks: number } {
  const spans: SpanRecord[] = [];
  const CHAINS = 20_000 - 50;
  for (let i = 0; i < CHAINS; i++) spans.push(taskSpan(i, (i + 1) % 40 === 0 ? undefined : i + 1));
  for (let k = 0; k < 50; k++) {
    const i = CHAINS + k;
    const s = taskSpan(i, CHAINS + ((k + 1) % 50));
    s.resource = { 'service.name': `cycle-svc-${k}` };
    spans.push(s);
  }
  // Shuffle: the cycle is not at the end of the input.
  let seed = 7;
  for (let i = spans.length - 1; i > 0; i--) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    const j = seed % (i + 1);
    [spans[i], spans[j]] = [spans[j], spans[i]];
  }
  const t0 = performance.now();
  const d = new Detector();
  d.addSpans(spans);
  d.detect();
  const f = d.findings();
  const seconds = (performance.now() - t0) / 1e3;
  return { tasks: spans.length, seconds: +seconds.toFixed(3), found: f.length, cycleTasks: f[0]?.tasks.length ?? 0 };
}

/** Analyze path vs decode alone, on the same protobuf batches. */
function throughput(): { spans: number; decodeSpansPerSec: number; analyzeSpansPerSec: number; ratio: number; findings: number } {
  const { batches, spanCount } = buildWorkload({ spans: 200_000, batchSize: 500, waitEveryNth: 10 });
  const decodeOnly = () => {
    let n = 0;
    for (const b of batches) n += decodeOtlpTracesProto(b).spans.length;
    return n;
  };
  const analyze = () => {
    const d = new Detector();
    for (const b of batches) d.addBatch(decodeOtlpTracesProto(b));
    d.detect();
    return d.findings().length;
  };
  decodeOnly();
  analyze(); // warm-up
  const best = (fn: () => unknown) => {
    let min = Infinity;
    for (let r = 0; r < 3; r++) {
      const t0 = performance.now();
      fn();
      min = Math.min(min, performance.now() - t0);
    }
    return min / 1e3;
  };
  const tDecode = best(decodeOnly);
  const tAnalyze = best(analyze);
  const findings = analyze();
  const decodeSpansPerSec = Math.round(spanCount / tDecode);
  const analyzeSpansPerSec = Math.round(spanCount / tAnalyze);
  return { spans: spanCount, decodeSpansPerSec, analyzeSpansPerSec, ratio: +(analyzeSpansPerSec / decodeSpansPerSec).toFixed(3), findings };
}

function memory(): { openTasks: number; peakRssMiB: number; heapUsedMiB: number; buildSeconds: number } {
  const t0 = performance.now();
  const d = new Detector();
  populate(d, 1_000_000);
  const buildSeconds = (performance.now() - t0) / 1e3;
  global.gc?.();
  const heapUsedMiB = Math.round(process.memoryUsage().heapUsed / 2 ** 20);
  const peakRssMiB = Math.round(process.resourceUsage().maxRSS / 1024);
  if (d.stats().tasks < 1_000_000) throw new Error('population failed');
  return { openTasks: 1_000_000, peakRssMiB, heapUsedMiB, buildSeconds: +buildSeconds.toFixed(2) };
}

const only = process.argv[2];
const out: Record<string, unknown> = {};
if (!only || only === 'hidden') {
  const h = hiddenCycle();
  console.log(`hidden cycle: ${h.tasks} tasks, found ${h.found} deadlock of ${h.cycleTasks} tasks in ${h.seconds} s (target < 2 s)`);
  out.hiddenCycle = h;
}
if (!only || only === 'throughput') {
  const t = throughput();
  console.log(
    `throughput: ${t.spans} spans (1 in 10 with wait events): decode alone ${t.decodeSpansPerSec} spans/s, ` +
      `analyze ${t.analyzeSpansPerSec} spans/s, ratio ${t.ratio} (targets >= 100000 spans/s, ratio >= 0.5)`,
  );
  out.throughput = t;
}
if (!only || only === 'latency') {
  const rows = [1_000, 100_000, 1_000_000].map((n) => latency(n));
  for (const r of rows) console.log(`per-event latency at ${r.openTasks} open tasks: median ${r.medianUs} µs, p99 ${r.p99Us} µs`);
  out.latency = rows;
}
if (!only || only === 'memory') {
  const m = memory();
  console.log(`memory: 1M open tasks built in ${m.buildSeconds} s, heap ${m.heapUsedMiB} MiB, peak RSS ${m.peakRssMiB} MiB (target < 1024 MiB)`);
  out.memory = m;
}
console.log(JSON.stringify(out));
