/**
 * The decode benchmark (`npx tsx processor/bench/decode-bench.ts [spans]`): a script, not a timed test.
 * Builds the shared OTLP workload (default 100k spans in ExportTraceServiceRequests of 500, serialized by
 * the OpenTelemetry JS serializers), warms up, then times several full passes of the protobuf decoder, and
 * for comparison the OTLP JSON decoder on the same spans. Prints spans/s and MB/s of the best and median
 * pass, and spans per CPU second (steady even when other work shares the machine); then the input cut of
 * `waitgraph run`, decoded and then cut, and fused in one pass. The last line is a JSON object of the figures.
 */
import { performance } from 'node:perf_hooks';
import { decodeOtlpJson, decodeOtlpTracesProto } from '../src/decode/index.js';
import { cutDecoded, decodeOtlpPayload, WaitInputCutter } from '../src/run/index.js';
import { WAIT_SPAN_ATTRIBUTES, WaitRecordBuilder } from '../src/scale/wait-records.js';
import { buildWorkload, type OtlpWorkload } from './otlp-workload.js';

const SPANS = Number(process.argv[2] ?? 100_000);
const RUNS = 7;

interface Figures {
  /** Best pass, wall clock. */
  spansPerSec: number;
  /** Best pass, by the process's CPU time (user + system, GC threads included): what one core does, even on a busy machine. */
  spansPerCpuSec: number;
  medianSpansPerSec: number;
  mbPerSec: number;
  msPerPass: number;
}

function measure(workload: OtlpWorkload, decode: (b: Uint8Array) => number): Figures {
  const pass = () => {
    let n = 0;
    for (const b of workload.batches) n += decode(b);
    if (n !== workload.spanCount) throw new Error(`decoded ${n} spans, expected ${workload.spanCount}`);
  };
  pass(); // warm-up: let the JIT settle
  pass();
  const times: number[] = [];
  let cpuBest = Infinity;
  for (let r = 0; r < RUNS; r++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    pass();
    times.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpuBest = Math.min(cpuBest, (c.user + c.system) / 1e6);
  }
  times.sort((a, b) => a - b);
  const best = times[0] / 1e3;
  const median = times[Math.floor(times.length / 2)] / 1e3;
  return {
    spansPerSec: Math.round(workload.spanCount / best),
    spansPerCpuSec: Math.round(workload.spanCount / cpuBest),
    medianSpansPerSec: Math.round(workload.spanCount / median),
    mbPerSec: +(workload.bytes / 1e6 / best).toFixed(1),
    msPerPass: +(best * 1e3).toFixed(1),
  };
}

const proto = buildWorkload({ spans: SPANS, batchSize: 500 });
const json = buildWorkload({ spans: SPANS, batchSize: 500, encoding: 'json' });
const decoder = new TextDecoder();
console.log(
  `workload: ${proto.spanCount} spans in ${proto.batches.length} requests, ${proto.eventCount} events, ` +
    `${proto.partialCount} partial snapshots; protobuf ${(proto.bytes / 1e6).toFixed(1)} MB, JSON ${(json.bytes / 1e6).toFixed(1)} MB`,
);

const p = measure(proto, (b) => decodeOtlpTracesProto(b).spans.length);
const line = (f: Figures) =>
  `${f.spansPerSec.toLocaleString('en')} spans/s (median ${f.medianSpansPerSec.toLocaleString('en')}; ` +
  `${f.spansPerCpuSec.toLocaleString('en')} per CPU second), ${f.mbPerSec} MB/s, ${f.msPerPass} ms per pass`;
console.log(`protobuf: ${line(p)}`);
const j = measure(json, (b) => decodeOtlpJson(decoder.decode(b)).spans.length);
console.log(`OTLP JSON: ${line(j)}`);
// The input cut of `waitgraph run` and of the decode stage (wait-records.ts): the protobuf decoded (of the
// span attributes, those the cut keeps) and then cut by the builder; and the two fused in one pass.
const builder = new WaitRecordBuilder();
const thenCut = measure(proto, (b) => cutDecoded(builder, decodeOtlpPayload('traces', 'proto', b, 'bench', WAIT_SPAN_ATTRIBUTES)).spans);
console.log(`protobuf decoded, then cut: ${line(thenCut)}`);
const cutter = new WaitInputCutter();
const fused = measure(proto, (b) => cutter.cut({ signal: 'traces', encoding: 'proto', bytes: b, name: 'bench' }).spans);
console.log(`protobuf decoded and cut in one pass (waitgraph run): ${line(fused)}`);

console.log(
  JSON.stringify({
    spans: proto.spanCount,
    requests: proto.batches.length,
    events: proto.eventCount,
    protobufBytes: proto.bytes,
    protobuf: p,
    json: j,
    decodedThenCut: thenCut,
    fusedCut: fused,
  }),
);
