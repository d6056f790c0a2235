/**
 * The Kafka benchmark (`npm run bench:kafka`): a script, not a timed test. Against a real broker (its own,
 * started with scripts/kafka.sh on free ports, or `$WAITGRAPH_KAFKA_BOOTSTRAP`) it prints its figures, and
 * its last line is a JSON object of them. It runs with the V8 flags of `waitgraph run` (bin/v8-flags.js).
 *
 * 1. Produces the workload (`--spans`, default 300,000 spans, 1 in 10 with wait events) as OTLP protobuf
 *    batches of 500 spans into a spans topic of 6 partitions.
 * 2. Throughput, each from the same messages, each with a consumer group of its own:
 *    (a) a plain kafkajs consumer that only reads them;
 *    (b) the path of `waitgraph run` from the spans topic to graph updates, built as the processor builds
 *        it (KafkaThreadInput): on a thread of its own, a KafkaSource, each message decoded and cut to what
 *        detection reads (WaitInputCutter), each batch as one cut frame to the event loop; there, the
 *        DetectionPipeline (Detector.addBatch and detect() per batch, counts, metrics); timed from the first
 *        batch fetched to the last applied, with how busy the event loop was and the CPU time of the
 *        process; run twice on one Kafka thread, as a processor has one for its life, each time with a fresh
 *        consumer group, pipeline and graph: (b0) the first pass, the code still cold, and (b) the second,
 *        as a processor that has been running runs it;
 *    (b1) the same all on the event loop (kafkaInput), as `waitgraph run` read Kafka before the thread;
 *    (b') the scale-out path: a decode stage republishing wait records and a detection stage reading
 *        them, running side by side, until the detection stage has taken in every span;
 *    (c) for reference, whole spans: KafkaSource, the OTLP decoder on the event loop, Detector.addBatch and
 *        detect() per batch, nothing cut;
 *    (d0) KafkaSource alone, nothing decoded, and (d1) KafkaSource with the run path's decode and cut but no
 *        engine: about what the Kafka thread of (b) does;
 *    spans/s of each and the ratio of each to (a); beside each read, how many of the machine's cores were
 *    busy and how many the broker's process used (from /proc);
 *    (e) `--rounds` rounds (default 5) on a warm broker, each the plain consumer and then the run path (on
 *    the Kafka thread of (b0) and (b), warm), and each round's ratio of the two. By then the broker has
 *    served every read above: a fresh broker serves the first reader several times slower, and for the
 *    first seconds it spends CPU of its own on the JIT and on what was produced (0.5 cores during (b), 0.2
 *    in the rounds), which costs most the reader that needs the CPU itself. The target's ratio is the
 *    median of the rounds' ratios (targets: >= 50,000 spans/s, ratio >= 0.5); the lowest round, and (b)
 *    to the fastest plain read of the whole run (the figure of earlier versions), are printed beside it.
 * 3. Detection latency: `waitgraph run` in a child process (single-instance, then `--role both`) reads a
 *    fresh spans topic while the workload is produced into it at `--rate` spans/s (default 60,000; six
 *    seconds of it built, then repeated with new trace ids and later times; span times follow the wall
 *    clock, so the processor keeps them for its history; a partial snapshot's span comes again, ended,
 *    about a second later, as from a live emitter). The processor runs with its defaults. Once the processor has caught up with the load
 *    (its consumer lag within two ticks of load; a processor that has just started runs cold code for a few
 *    seconds), and not before `--warmup` s (default 3), every `--every` ms (default 100) a lock cycle is
 *    sent, its two spans on two partitions, and the time from producing the span that closes it to the
 *    alert on the alert topic is measured, over `--cycles` cycles (default 1,500). The cycles begin once the
 *    processor's graph is full: it holds its --max-spans (default 500,000) and forgets as fast as it takes
 *    in (its `waitgraph_spans_forgotten_total` has moved; about half a minute at the default load).
 *    Target: p99 < 200 ms. A processor that falls behind shows as cycles not alerted. `--series` prints
 *    every cycle's latency in the order sent, and the processor's state every second. Beside the figures it
 *    prints how many cycles took longer than the target, and the major garbage collections of the
 *    processor's event loop during the cycles (from its /metrics): at this load one comes about every 45 s
 *    and holds up the few cycles sent during its marking. Why 1,500 cycles (150 s): a p99 must come from
 *    enough cycles to span several of those collections. Over 400 (40 s) the p99 is the fourth-worst
 *    cycle, and whether one collection fell among them decides it.
 *
 * Run one part alone with `npm run bench:kafka -- throughput` or `-- latency` (`-- latency-all` for the
 * single-instance run only, `-- latency-both` for `--role both` only). `BENCH_PROCESSOR_NODE_ARGS` passes
 * node options to the processor's process (`--cpu-prof --cpu-prof-dir=/tmp/prof` profiles it),
 * `BENCH_PROCESSOR_ARGS` more options of `waitgraph run` (`--max-spans 300000`); `BENCH_GC_LOG=1` lets the
 * processor's standard output through (for node's `--trace-gc` lines).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { Kafka, logLevel, Partitioners, type Producer } from 'kafkajs';
import { RUN_V8_FLAGS } from '../../bin/v8-flags.js';
import { decodeOtlpTracesProto } from '../src/decode/index.js';
import { Detector } from '../src/engine/index.js';
import { KafkaSource, ProcessorMetrics, silentLogger, type DecodedMessage, type SourceMessage } from '../src/io/index.js';
import type { DecodedBatch } from '../src/model/span.js';
import { AlertLedger, createLogger, DetectionPipeline, kafkaInput, KafkaThread, KafkaThreadInput, WaitInputCutter, type TimedBatch } from '../src/run/index.js';
import { DecodeStage, DetectStage, WaitRecordBuilder } from '../src/scale/index.js';
import { lockCycle } from './cycle-spans.js';
import { benchBroker, freePort } from './kafka-broker.js';
import { buildWorkload, repeatBatch } from './otlp-workload.js';

const PARTITIONS = 6;
const BATCH_SPANS = 500;

interface Args {
  parts: Set<string>;
  spans: number;
  rate: number;
  cycles: number;
  everyMs: number;
  warmupMs: number;
  series: boolean;
  rounds: number;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { parts: new Set(), spans: 300_000, rate: 60_000, cycles: 1500, everyMs: 100, warmupMs: 3_000, series: false, rounds: 5 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const num = () => Number(argv[++i]);
    if (a === '--spans') args.spans = num();
    else if (a === '--rate') args.rate = num();
    else if (a === '--cycles') args.cycles = num();
    else if (a === '--every') args.everyMs = num();
    else if (a === '--warmup') args.warmupMs = num() * 1000;
    else if (a === '--series') args.series = true;
    else if (a === '--rounds') args.rounds = Math.max(1, Math.floor(num()));
    else if (a === 'throughput' || a === 'latency' || a === 'latency-all' || a === 'latency-both') args.parts.add(a);
    else throw new Error(`kafka-bench: unknown argument ${a} (takes throughput, latency, latency-all, latency-both, --spans n, --rounds n, --rate n, --cycles n, --every ms, --warmup s, --series)`);
  }
  if (args.parts.size === 0) args.parts = new Set(['throughput', 'latency']);
  return args;
}

const log = (line: string) => console.log(line);
const round = (x: number) => Math.round(x);
const ratio = (x: number, y: number) => Math.round((x / y) * 1000) / 1000;

function client(bootstrap: string, clientId: string): Kafka {
  return new Kafka({ clientId, brokers: [bootstrap], logLevel: logLevel.NOTHING, retry: { initialRetryTime: 100, retries: 8 } });
}

async function createTopics(kafka: Kafka, topics: string[], partitions = PARTITIONS): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    // A new topic's metadata can lag its creation on a busy broker (kafkajs then reports it unknown while
    // waiting for leaders): try again, taking a topic that already exists as made.
    for (let attempt = 1; ; attempt++) {
      try {
        const existing = new Set(await admin.listTopics());
        const todo = topics.filter((t) => !existing.has(t));
        if (todo.length > 0) await admin.createTopics({ topics: todo.map((topic) => ({ topic, numPartitions: partitions })), waitForLeaders: true });
        return;
      } catch (err) {
        if (attempt >= 5) throw err;
        await new Promise((ok) => setTimeout(ok, 500 * attempt));
      }
    }
  } finally {
    await admin.disconnect();
  }
}

/** Sends batches round-robin over the partitions, a few requests in flight. */
async function produceAll(producer: Producer, topic: string, batches: Uint8Array[], from = 0): Promise<void> {
  const inFlight: Promise<unknown>[] = [];
  for (let i = 0; i < batches.length; i += 8) {
    const messages = batches.slice(i, i + 8).map((b, k) => ({ partition: (from + i + k) % PARTITIONS, value: Buffer.from(b.buffer, b.byteOffset, b.byteLength) }));
    inFlight.push(producer.send({ topic, messages, acks: 1 }));
    if (inFlight.length >= 4) await inFlight.shift();
  }
  await Promise.all(inFlight);
}

async function until(check: () => boolean, what: string, timeoutMs = 300_000, stepMs = 5): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`kafka-bench: timed out waiting for ${what}`);
    await new Promise((ok) => setTimeout(ok, stepMs));
  }
}

/** The broker's process id, when the benchmark started it: its CPU time is shown beside ours. */
let brokerPid: number | undefined;
/** Clock ticks a second of /proc's CPU times. */
const TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU time so far, ms: of the whole machine (busy, and busy or idle), and of the broker's process. */
interface CpuTimes {
  busyMs: number;
  totalMs: number;
  brokerMs: number;
}

function cpuTimes(): CpuTimes {
  const ms = (ticks: number) => (ticks * 1000) / TICKS;
  let busyMs = 0;
  let totalMs = 0;
  let brokerMs = Number.NaN;
  try {
    // cpu  user nice system idle iowait irq softirq steal ...
    const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1, 9).map(Number);
    const idle = f[3] + f[4];
    const all = f.reduce((a, b) => a + b, 0);
    busyMs = ms(all - idle);
    totalMs = ms(all);
    if (brokerPid !== undefined) {
      // utime and stime: fields 14 and 15, counted after the command name's closing parenthesis.
      const stat = readFileSync(`/proc/${brokerPid}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      brokerMs = ms(Number(rest[11]) + Number(rest[12]));
    }
  } catch {
    // Not Linux, or the broker is gone: the figures print as n/a.
  }
  return { busyMs, totalMs, brokerMs };
}

/** The machine's cores busy, and the broker's, between two readings. */
function machineLoad(a: CpuTimes, b: CpuTimes): { machineCores: number; brokerCores: number } {
  const cores = availableParallelism();
  const total = b.totalMs - a.totalMs;
  const perCore = total / cores;
  const round2 = (x: number) => Math.round(x * 100) / 100;
  return { machineCores: round2((b.busyMs - a.busyMs) / perCore), brokerCores: round2((b.brokerMs - a.brokerMs) / perCore) };
}

const load = (l: { machineCores: number; brokerCores: number }) =>
  `machine ${Number.isFinite(l.machineCores) ? l.machineCores.toFixed(2) : 'n/a'} of ${availableParallelism()} cores busy, broker ${Number.isFinite(l.brokerCores) ? l.brokerCores.toFixed(2) : 'n/a'}`;

/** (a) A plain kafkajs consumer that only reads the messages. */
async function plainRead(kafka: Kafka, topic: string, messages: number): Promise<{ ms: number; load: ReturnType<typeof machineLoad> }> {
  const consumer = kafka.consumer({ groupId: `bench-plain-${randomUUID()}`, maxWaitTimeInMs: 100, maxBytesPerPartition: 1_048_576 });
  let seen = 0;
  let first = 0;
  let last = 0;
  let cpu0: CpuTimes | undefined;
  let cpu1: CpuTimes | undefined;
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    eachBatch: async ({ batch }) => {
      if (first === 0) {
        first = performance.now();
        cpu0 = cpuTimes();
      }
      for (const m of batch.messages) if (m.value) seen++;
      last = performance.now();
      if (seen >= messages) cpu1 ??= cpuTimes();
    },
  });
  await until(() => seen >= messages, 'the plain consumer');
  await consumer.disconnect();
  return { ms: last - first, load: machineLoad(cpu0!, cpu1!) };
}

/** What the waitgraph readers share: the spans topic from its start, in a group of their own, no dead letters. */
function sourceOptions(bootstrap: string, topic: string) {
  return {
    brokers: [bootstrap],
    clientId: 'bench-waitgraph',
    logger: silentLogger,
    topics: [{ topic, signal: 'traces' as const }],
    groupId: `bench-waitgraph-${randomUUID()}`,
    deadLetterTopic: null,
    fromBeginning: true,
  };
}

/**
 * (b) The path of `waitgraph run`: KafkaThreadInput (the source, decode and cut on a thread of their own) and
 * the DetectionPipeline, on the thread given; or all of it on the event loop (kafkaInput).
 */
async function processorRead(
  bootstrap: string,
  topic: string,
  spans: number,
  thread: KafkaThread | 'on the loop',
): Promise<{ ms: number; kept: number; busy: number; threadBusy?: number; cpuMs: number; load: ReturnType<typeof machineLoad> }> {
  let first = 0;
  let last = 0;
  let kept = 0;
  // The pipeline as the processor makes it, timed from the first batch fetched to the detection pass after the last.
  class TimedPipeline extends DetectionPipeline {
    override async take(lane: string, items: readonly TimedBatch[], receivedAtMs: number, lastOffset?: string, behind?: boolean): Promise<void> {
      if (first === 0) first = receivedAtMs;
      for (const it of items) kept += it.batch.spans.length;
      await super.take(lane, items, receivedAtMs, lastOffset, behind);
      if (this.counts.spans >= spans) await this.settled().then(() => (last = Date.now()));
    }
  }
  const pipeline = new TimedPipeline({
    detector: {},
    staleAfterMs: 120_000,
    sinks: [],
    ledger: new AlertLedger(),
    metrics: new ProcessorMetrics({ processMetrics: false }),
    logger: createLogger({ level: 'error' }),
    source: { instance: 'bench', version: 'bench' },
    // Live input, as after warm-up: no replay to hold back and order.
    kafka: false,
    startedAtMs: Date.now(),
  });
  const source =
    thread === 'on the loop'
      ? kafkaInput({ ...sourceOptions(bootstrap, topic), cutter: new WaitInputCutter(), pipeline })
      : new KafkaThreadInput({ ...sourceOptions(bootstrap, topic), pipeline, thread });
  await source.start();
  await until(() => pipeline.counts.spans > 0, 'the waitgraph run path to start', 300_000, 1);
  const elu0 = performance.eventLoopUtilization();
  // The Kafka thread's event loop, as the thread's own: how busy the decoding, the cut and the Kafka client kept it.
  const threadElu0 = thread === 'on the loop' ? undefined : thread.worker.performance.eventLoopUtilization();
  const cpu0 = process.cpuUsage();
  const machine0 = cpuTimes();
  await until(() => pipeline.counts.spans >= spans, 'the waitgraph run path');
  const busy = performance.eventLoopUtilization(elu0).utilization;
  const threadBusy = thread === 'on the loop' ? undefined : thread.worker.performance.eventLoopUtilization(threadElu0).utilization;
  const cpu = process.cpuUsage(cpu0);
  const machine = machineLoad(machine0, cpuTimes());
  await source.shutdown();
  return { ms: last - first, kept, busy, threadBusy, cpuMs: (cpu.user + cpu.system) / 1000, load: machine };
}

/**
 * Reads the topic with a KafkaSource that decodes each message with `decode` and hands each batch to
 * `take`, until `done()`; returns the ms from the first batch fetched to the last taken.
 */
async function timedSourceRead<T>(
  bootstrap: string,
  topic: string,
  decode: (m: SourceMessage) => T,
  take: (messages: DecodedMessage<T>[]) => void,
  done: () => boolean,
  what: string,
): Promise<number> {
  let first = 0;
  let last = 0;
  const source = new KafkaSource<T>({
    ...sourceOptions(bootstrap, topic),
    decode,
    apply: async (messages, info) => {
      if (first === 0) first = info.receivedAtMs;
      take(messages);
      last = Date.now();
    },
  });
  await source.start();
  await until(done, what);
  await source.shutdown();
  return last - first;
}

/** (c) Whole spans: KafkaSource, the OTLP decoder on the event loop, Detector.addBatch and detect per batch. */
function wholeSpansRead(bootstrap: string, topic: string, spans: number): Promise<number> {
  const detector = new Detector();
  let seen = 0;
  const take = (messages: DecodedMessage<DecodedBatch>[]) => {
    for (const { message, value } of messages) {
      seen += value.spans.length;
      detector.addBatch(value, message.timestampMs * 1e6);
    }
    detector.detect();
  };
  return timedSourceRead(bootstrap, topic, (m) => decodeOtlpTracesProto(m.value, m.name), take, () => seen >= spans, 'the whole-span consumer');
}

/**
 * (d) What the run path costs without the engine: KafkaSource, with each message decoded and cut as the
 * run path's Kafka thread does it (`cutKept`), or not decoded at all; timed from the first batch fetched to
 * the last message.
 */
function sourceOnlyRead(bootstrap: string, topic: string, messages: number, cut: boolean): Promise<number> {
  const cutter = new WaitInputCutter();
  let seen = 0;
  const decode = (m: SourceMessage) => (cut ? cutter.cutKept({ signal: 'traces', encoding: 'proto', bytes: m.value, name: m.name }) : m.value.length);
  return timedSourceRead(bootstrap, topic, decode, (batch) => void (seen += batch.length), () => seen >= messages, 'the source-only consumer');
}

/** (b') The decode stage and the detection stage side by side, until detection has taken in every span. */
async function twoStageRead(bootstrap: string, topic: string, spans: number): Promise<{ ms: number; kept: number }> {
  const id = randomUUID().slice(0, 8);
  const waitsTopic = `bench.waits.${id}`;
  await createTopics(client(bootstrap, 'bench-admin'), [waitsTopic]);
  const decode = new DecodeStage({
    brokers: [bootstrap],
    clientId: 'bench-decode',
    logger: silentLogger,
    topics: [{ topic, signal: 'traces' }],
    groupId: `bench-decode-${id}`,
    waitsTopic,
    deadLetterTopic: null,
  });
  const detect = new DetectStage({
    brokers: [bootstrap],
    instanceId: `bench-${id}`,
    logger: silentLogger,
    waitsTopic,
    alertTopic: `bench.alerts.${id}`,
    ownershipGroup: `bench-detect-${id}`,
  });
  await detect.start();
  await decode.start();
  await until(() => decode.counts.spansIn > 0, 'the decode stage to start');
  const first = performance.now();
  await until(() => detect.counts.sourceSpans >= spans, 'the detection stage');
  const ms = performance.now() - first;
  const kept = detect.counts.spans;
  await Promise.all([decode.shutdown(), detect.shutdown()]);
  return { ms, kept };
}

/** How busy a read kept the event loop, and the process's CPU time in cores over the read. */
const busy = (r: { ms: number; busy: number; threadBusy?: number; cpuMs: number; load: ReturnType<typeof machineLoad> }) =>
  `event loop ${Math.round(r.busy * 100)}% busy${r.threadBusy === undefined ? '' : `, Kafka thread ${Math.round(r.threadBusy * 100)}%`}, process ${(r.cpuMs / r.ms).toFixed(2)} cores; ${load(r.load)}`;

async function throughput(bootstrap: string, args: Args) {
  const kafka = client(bootstrap, 'bench');
  const topic = `bench.spans.${randomUUID().slice(0, 8)}`;
  await createTopics(kafka, [topic]);
  log(`building ${args.spans} spans of OTLP protobuf (batches of ${BATCH_SPANS}, 1 in 10 with wait events)...`);
  const work = buildWorkload({ spans: args.spans, batchSize: BATCH_SPANS, seed: 1 });
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const t0 = performance.now();
  await produceAll(producer, topic, work.batches);
  const produceMs = performance.now() - t0;
  await producer.disconnect();
  log(`produced ${work.spanCount} spans in ${work.batches.length} messages (${(work.bytes / 1e6).toFixed(1)} MB) to ${PARTITIONS} partitions in ${round(produceMs)} ms`);

  // What a decode stage keeps of this workload.
  const b = new WaitRecordBuilder();
  let waitBytes = 0;
  for (const bytes of work.batches) {
    b.add(decodeOtlpTracesProto(bytes), 0);
    waitBytes += JSON.stringify(b.take()).length;
  }
  const filter = { spansKept: b.counts.spansKept, keptRatio: ratio(b.counts.spansKept, b.counts.spansIn), bytesRatio: ratio(waitBytes, work.bytes) };
  log(`wait-record filter: keeps ${filter.spansKept} of ${work.spanCount} spans (${filter.keptRatio}), ${filter.bytesRatio} of the bytes`);

  const { ms: plainMs, load: plainLoad } = await plainRead(kafka, topic, work.batches.length);
  const plain = round((work.spanCount / plainMs) * 1000);
  log(`(a)   plain kafkajs consumer:                ${plain} spans/s (${round(plainMs)} ms); ${load(plainLoad)}`);
  // Twice, each with a fresh pipeline: the first pass runs the code cold (V8 compiles it as it goes, and
  // sizes its heap), the second as a processor that has been running runs it.
  // One Kafka thread for both, as a processor has one for its life: the second pass runs on warm code there too.
  const thread = new KafkaThread();
  const cold = await processorRead(bootstrap, topic, work.spanCount, thread);
  const waitgraphCold = round((work.spanCount / cold.ms) * 1000);
  log(`(b0)  waitgraph run path, first pass (cold):  ${waitgraphCold} spans/s (${round(cold.ms)} ms), ${busy(cold)}`);
  const wg = await processorRead(bootstrap, topic, work.spanCount, thread);
  const waitgraph = round((work.spanCount / wg.ms) * 1000);
  log(
    `(b)   waitgraph run path, second pass:       ${waitgraph} spans/s (${round(wg.ms)} ms), ratio ${ratio(waitgraph, plain)}; ` +
      `${wg.kept} spans kept for the engine; ${busy(wg)}`,
  );
  const loop = await processorRead(bootstrap, topic, work.spanCount, 'on the loop');
  const onLoop = round((work.spanCount / loop.ms) * 1000);
  log(`(b1)  the same, all on the event loop:     ${onLoop} spans/s (${round(loop.ms)} ms), ${busy(loop)}`);
  const two = await twoStageRead(bootstrap, topic, work.spanCount);
  const twoStage = round((work.spanCount / two.ms) * 1000);
  log(`(b')  decode stage -> waits -> detection:    ${twoStage} spans/s (${round(two.ms)} ms), ratio ${ratio(twoStage, plain)}`);
  const wholeMs = await wholeSpansRead(bootstrap, topic, work.spanCount);
  const whole = round((work.spanCount / wholeMs) * 1000);
  log(`(c)   whole spans, decode + engine on loop:  ${whole} spans/s (${round(wholeMs)} ms), ratio ${ratio(whole, plain)}`);
  const bareMs = await sourceOnlyRead(bootstrap, topic, work.batches.length, false);
  const bare = round((work.spanCount / bareMs) * 1000);
  log(`(d0)  KafkaSource alone, nothing decoded:    ${bare} spans/s (${round(bareMs)} ms)`);
  const cutMs = await sourceOnlyRead(bootstrap, topic, work.batches.length, true);
  const cutOnly = round((work.spanCount / cutMs) * 1000);
  log(`(d1)  KafkaSource + decode and cut, no engine: ${cutOnly} spans/s (${round(cutMs)} ms): the Kafka thread's work, alone`);
  // (e) Rounds on a warm broker: the plain consumer, then the run path (on the same Kafka thread, warm),
  // each round's ratio of the two. The broker has served every read above by now: its JIT has compiled
  // the fetch path and it has flushed what was produced. Early reads meet a broker still busy with that
  // (its own CPU time, printed beside each read, is twice as high during (b) as in these rounds), which
  // costs whoever reads then, and most the reader that needs the CPU itself.
  const rounds: { plain: number; waitgraph: number; ratio: number }[] = [];
  for (let k = 1; k <= args.rounds; k++) {
    const p = await plainRead(kafka, topic, work.batches.length);
    const w = await processorRead(bootstrap, topic, work.spanCount, thread);
    const r = { plain: round((work.spanCount / p.ms) * 1000), waitgraph: round((work.spanCount / w.ms) * 1000), ratio: 0 };
    r.ratio = ratio(r.waitgraph, r.plain);
    rounds.push(r);
    log(`(e${k})  warm round ${k}: plain ${r.plain} spans/s (${load(p.load)}); run path ${r.waitgraph} spans/s (${busy(w)}); ratio ${r.ratio}`);
  }
  await thread.close();
  const roundRatios = rounds.map((r) => r.ratio).sort((a, b) => a - b);
  const medianRatio = roundRatios[Math.floor((roundRatios.length - 1) / 2)]!;
  const warm = Math.max(...rounds.map((r) => r.plain));
  const fastest = Math.max(plain, warm);
  const bestRun = Math.max(waitgraph, ...rounds.map((r) => r.waitgraph));
  log(
    `ratio of the run path to the plain consumer, warm rounds: median ${medianRatio} (target >= 0.5), lowest ${roundRatios[0]}, highest ${roundRatios.at(-1)}; ` +
      `(b), the second pass, to the fastest plain read of the run: ${ratio(waitgraph, fastest)}; the fastest run path pass to it: ${ratio(bestRun, fastest)}; ` +
      `(b0), cold: ${ratio(waitgraphCold, fastest)}; (d1), with no engine at all: ${ratio(cutOnly, fastest)}`,
  );
  return {
    spans: work.spanCount,
    messages: work.batches.length,
    partitions: PARTITIONS,
    filter,
    plainSpansPerSec: plain,
    waitgraphSpansPerSec: waitgraph,
    ratio: medianRatio,
    rounds,
    lowestRoundRatio: roundRatios[0],
    secondPassToFastestPlain: ratio(waitgraph, fastest),
    fastestPassToFastestPlain: ratio(bestRun, fastest),
    coldSpansPerSec: waitgraphCold,
    coldRatio: ratio(waitgraphCold, fastest),
    ratioToFirstPlain: ratio(waitgraph, plain),
    onLoopSpansPerSec: onLoop,
    onLoopRatio: ratio(onLoop, fastest),
    twoStageSpansPerSec: twoStage,
    twoStageRatio: ratio(twoStage, plain),
    wholeSpansPerSec: whole,
    wholeRatio: ratio(whole, plain),
    warmPlainSpansPerSec: warm,
    sourceAloneSpansPerSec: bare,
    decodeAndCutSpansPerSec: cutOnly,
    decodeAndCutRatio: ratio(cutOnly, fastest),
  };
}

/** The latency target: p99 under it. */
const LATENCY_TARGET_MS = 200;

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** `waitgraph run` in a child process, single-instance (`all`) or as a scale-out instance (`both`). */
type LatencyRole = 'all' | 'both';

/** Whether a consumer group is stable with at least one member. */
async function groupStable(kafka: Kafka, groupId: string): Promise<boolean> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const { groups } = await admin.describeGroups([groupId]);
    return groups[0]?.state === 'Stable' && groups[0].members.length > 0;
  } finally {
    await admin.disconnect();
  }
}

/** A topic the processor reads. */
interface Reader {
  topic: string;
  /** Messages on the topic for each load batch (a decode stage splits a batch by detection partition). */
  perBatch: number;
}

/** The longest warm-up: a processor that has not caught up by then is measured as it is. */
const WARMUP_LIMIT_MS = 30_000;

/**
 * Waits at least `minMs`, then until the processor's consumer lag (`waitgraph_consumer_lag` on its
 * `/metrics`) on every topic it reads is within two ticks of load (`perTick` batches, each `perBatch`
 * messages on the topic). Returns when it had caught up (ms from now), or undefined after WARMUP_LIMIT_MS.
 */
async function warmUp(url: string, readers: Reader[], minMs: number, perTick: number): Promise<number | undefined> {
  const start = Date.now();
  await new Promise((ok) => setTimeout(ok, minMs));
  while (Date.now() - start < WARMUP_LIMIT_MS) {
    const text = await (await fetch(`${url}/metrics`)).text();
    const lag = (topic: string) =>
      text
        .split('\n')
        .filter((l) => l.startsWith(`waitgraph_consumer_lag{topic="${topic}"`))
        .reduce((n, l) => n + Number(l.split(' ').pop()), 0);
    const seen = (topic: string) => text.includes(`waitgraph_consumer_lag{topic="${topic}"`);
    if (readers.every((r) => seen(r.topic) && lag(r.topic) <= 2 * perTick * r.perBatch)) return Date.now() - start;
    await new Promise((ok) => setTimeout(ok, 250));
  }
  return undefined;
}

/** How long the latency part waits for the processor's graph to fill. */
const FILL_LIMIT_MS = 240_000;

/** Waits until the processor has forgotten a span (its graph is full); returns when, from `since`. */
async function fillUp(url: string, since: number): Promise<number | undefined> {
  while (Date.now() - since < FILL_LIMIT_MS) {
    if (metric(await (await fetch(`${url}/metrics`)).text(), 'waitgraph_spans_forgotten_total') > 0) return Date.now() - since;
    await new Promise((ok) => setTimeout(ok, 500));
  }
  return undefined;
}

/** Starts `waitgraph run` on the topics; resolves when it takes input. */
async function startProcessor(
  kafka: Kafka,
  bootstrap: string,
  topics: { spans: string; logs: string; alerts: string; waits: string },
  id: string,
  role: LatencyRole,
): Promise<{ child: ChildProcess; url: string; readers: Reader[] }> {
  const port = await freePort();
  const bin = new URL('../../bin/waitgraph.js', import.meta.url).pathname;
  const group = `bench-run-${id}-${role}`;
  const child = spawn(
    process.execPath,
    [
      ...(process.env.BENCH_PROCESSOR_NODE_ARGS ? process.env.BENCH_PROCESSOR_NODE_ARGS.split(' ') : []),
      bin,
      'run',
      ...(role === 'both' ? ['--role', 'both', '--waits-topic', topics.waits] : []),
      '--kafka-brokers', bootstrap,
      '--spans-topic', topics.spans,
      '--logs-topic', topics.logs,
      '--alert-topic', topics.alerts,
      '--group-id', group,
      '--dead-letter-topic', '',
      '--alert-file', '',
      '--stdout', 'none',
      '--port', String(port),
      '--replay-window', '0',
      '--stats-interval', '0',
      '--log-level', 'warn',
      '--instance-id', `bench-${id}`,
      ...(process.env.BENCH_PROCESSOR_ARGS ? process.env.BENCH_PROCESSOR_ARGS.split(' ') : []),
    ],
    { stdio: ['ignore', process.env.BENCH_GC_LOG ? 'inherit' : 'ignore', 'inherit'] },
  );
  const url = `http://127.0.0.1:${port}`;
  const ready =
    role === 'all'
      ? () => fetch(`${url}/healthz`).then((r) => r.ok, () => false)
      : async () => (await groupStable(kafka, `${group}-decode`)) && (await groupStable(kafka, `${group}-detect`));
  const deadline = Date.now() + 120_000;
  while (!(await ready())) {
    if (child.exitCode !== null) throw new Error(`kafka-bench: waitgraph run exited with ${child.exitCode}`);
    if (Date.now() > deadline) throw new Error('kafka-bench: waitgraph run did not become ready');
    await new Promise((ok) => setTimeout(ok, 100));
  }
  const readers: Reader[] =
    role === 'all'
      ? [{ topic: topics.spans, perBatch: 1 }]
      : [
          { topic: topics.spans, perBatch: 1 },
          { topic: topics.waits, perBatch: PARTITIONS },
        ];
  return { child, url, readers };
}

/** Reads a counter's value from Prometheus text: the first series of `name`, or the one with exactly `labels` (`kind="major"`). */
function metric(text: string, name: string, labels?: string): number {
  const line = text.split('\n').find((l) => (labels === undefined ? l.startsWith(name + ' ') || l.startsWith(name + '{') : l.startsWith(`${name}{${labels}} `)));
  return line ? Number(line.split(' ').pop()) : 0;
}

/** The major garbage collections of the processor's event loop so far, and their pauses (ms), from its /metrics. */
async function majorCollections(url: string): Promise<{ count: number; pauseMs: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return {
    count: metric(text, 'nodejs_gc_duration_seconds_count', 'kind="major"'),
    pauseMs: metric(text, 'nodejs_gc_duration_seconds_sum', 'kind="major"') * 1000,
  };
}

async function latency(bootstrap: string, args: Args, role: LatencyRole) {
  const kafka = client(bootstrap, 'bench-latency');
  const id = randomUUID().slice(0, 8);
  const topics = { spans: `bench.lat.spans.${id}`, logs: `bench.lat.logs.${id}`, alerts: `bench.lat.alerts.${id}`, waits: `bench.lat.waits.${id}` };
  await createTopics(kafka, [topics.spans, topics.waits]);
  await createTopics(kafka, [topics.logs, topics.alerts], 1);
  // The load is built for a few seconds and repeated with new trace ids and later times for as long as the
  // run needs (see repeatBatch): a warm-up, the cycles, and a second after them.
  const loadSeconds = 6;
  log(`building ${args.rate * loadSeconds} spans of background load (${args.rate} spans/s, repeated as long as needed)...`);
  // Span times follow the wall clock at the load's pace, from about when the load starts (a few seconds of
  // building and starting from now): the processor keeps them for its whole history, as it would live.
  const stepNs = (BATCH_SPANS / args.rate) * 1e9;
  // A partial snapshot's span ends about a second later, and comes again whole, as from a live emitter:
  // open spans are not left to go stale by the thousand (the processor runs with its defaults).
  const partialsEndAfter = Math.max(1, Math.round(args.rate / BATCH_SPANS / 20)) * 20;
  const load = buildWorkload({ spans: args.rate * loadSeconds, batchSize: BATCH_SPANS, seed: 7, startNs: Date.now() * 1e6, stepNs, partialsEndAfter });
  const shiftNs = load.batches.length * stepNs;
  const cycles = Array.from({ length: args.cycles }, (_, i) => lockCycle(`bench-${id}-${i}`));

  const { child, url, readers } = await startProcessor(kafka, bootstrap, topics, id, role);
  const arrived = new Map<string, number>();
  const alerts = kafka.consumer({ groupId: `bench-alerts-${id}`, maxWaitTimeInMs: 20 });
  await alerts.connect();
  await alerts.subscribe({ topics: [topics.alerts], fromBeginning: true });
  await alerts.run({
    eachMessage: async ({ message }) => {
      const at = Date.now();
      const key = message.key?.toString();
      if (key && !arrived.has(key)) arrived.set(key, at);
    },
  });
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const cycleProducer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await cycleProducer.connect();
  try {
    // The load: batches paced to the rate, one tick every 50 ms, until the cycles are done.
    const perTick = (args.rate / BATCH_SPANS) * 0.05;
    let sentBatches = 0;
    let loadOn = true;
    const loadStart = Date.now();
    const loadDone = (async () => {
      while (loadOn) {
        const due = Math.floor(((Date.now() - loadStart) / 50 + 1) * perTick);
        if (due > sentBatches) {
          const n = load.batches.length;
          const next = Array.from({ length: due - sentBatches }, (_, i) => repeatBatch(load.batches[(sentBatches + i) % n], Math.floor((sentBatches + i) / n), shiftNs));
          await produceAll(producer, topics.spans, next, sentBatches);
          sentBatches = due;
        }
        await new Promise((ok) => setTimeout(ok, 10));
      }
    })();
    // Warm-up: latency is measured at the load, once the processor has caught up with it (a processor that
    // has just started runs cold code, and takes a few seconds to catch up), and not before --warmup s.
    const caughtUpMs = await warmUp(url, readers, args.warmupMs, perTick);
    log(
      caughtUpMs === undefined
        ? `warm-up: the processor had not caught up with the load after ${WARMUP_LIMIT_MS / 1000} s; measuring anyway`
        : `warm-up: the processor caught up with the load ${(caughtUpMs / 1000).toFixed(1)} s after it began`,
    );
    // And once its graph is full: it holds --max-spans and forgets as fast as it takes in, as a processor
    // that has been running does (the load's span times follow the wall clock).
    const fullMs = await fillUp(url, loadStart);
    log(
      fullMs === undefined
        ? `the graph was not full ${FILL_LIMIT_MS / 1000} s after the load began; measuring anyway`
        : `the graph full (forgetting) ${(fullMs / 1000).toFixed(1)} s after the load began; cycles from ${((Date.now() - loadStart) / 1000).toFixed(1)} s`,
    );
    // With --series, the processor's state every second: spans taken in, spans in its graph, RSS, lag.
    const states: string[] = [];
    const sampler =
      args.series && role === 'all'
        ? setInterval(() => {
            void fetch(`${url}/metrics`).then(async (r) => {
              const t = await r.text();
              const lag = t.split('\n').filter((l) => l.startsWith('waitgraph_consumer_lag{')).reduce((a, l) => a + Number(l.split(' ').pop()), 0);
              states.push(`${((Date.now() - loadStart) / 1000).toFixed(0)}s:${round(metric(t, 'waitgraph_spans_received_total') / 1000)}k/${round(metric(t, 'waitgraph_graph_spans') / 1000)}k/${round(metric(t, 'process_resident_memory_bytes') / 2 ** 20)}MiB/${round(metric(t, 'nodejs_heap_size_used_bytes') / 2 ** 20)}MiB/${lag}`);
            }, () => {});
          }, 1_000)
        : undefined;
    // Cycles: the closing span's produce time is where latency starts.
    const gc0 = await majorCollections(url);
    const sentAt = new Map<string, number>();
    for (const c of cycles) {
      await cycleProducer.send({ topic: topics.spans, acks: 1, messages: [{ partition: 0, value: Buffer.from(c.messages[0]) }] });
      sentAt.set(c.fingerprint, Date.now());
      await cycleProducer.send({ topic: topics.spans, acks: 1, messages: [{ partition: 1, value: Buffer.from(c.messages[1]) }] });
      await new Promise((ok) => setTimeout(ok, args.everyMs));
    }
    await new Promise((ok) => setTimeout(ok, 1_000));
    const gc1 = await majorCollections(url);
    loadOn = false;
    if (sampler) {
      clearInterval(sampler);
      log(`processor (time: spans in / in the graph / RSS / heap used / consumer lag in messages): ${states.join(' ')}`);
    }
    await loadDone;
    const loadMs = Date.now() - loadStart;
    const lastCycle = Date.now();
    // A processor that cannot keep up alerts late, or not within the wait: both show in the figures.
    await until(() => cycles.every((c) => arrived.has(c.fingerprint)), 'every cycle alert', 30_000, 20).catch(() => {});
    const waitedMs = Date.now() - lastCycle;
    const spansIn = role === 'all' ? metric(await (await fetch(`${url}/metrics`)).text(), 'waitgraph_spans_received_total') : undefined;
    if (args.series) log(`latency series (ms, in the order sent; -1 not alerted): ${cycles.map((c) => (arrived.has(c.fingerprint) ? arrived.get(c.fingerprint)! - sentAt.get(c.fingerprint)! : -1)).join(' ')}`);
    const lat = cycles.filter((c) => arrived.has(c.fingerprint)).map((c) => arrived.get(c.fingerprint)! - sentAt.get(c.fingerprint)!).sort((a, b) => a - b);
    const missing = cycles.length - lat.length;
    const result = {
      path: role === 'all' ? 'waitgraph run' : 'waitgraph run --role both',
      cycles: cycles.length,
      loadSpansPerSec: round(((sentBatches * BATCH_SPANS) / loadMs) * 1000),
      caughtUpAfterMs: caughtUpMs ?? null,
      graphFullAfterMs: fullMs ?? null,
      ...(spansIn !== undefined ? { processorSpansIn: spansIn } : {}),
      alerted: lat.length,
      missingAfterMs: missing > 0 ? waitedMs : 0,
      p50Ms: lat.length ? quantile(lat, 0.5) : null,
      p90Ms: lat.length ? quantile(lat, 0.9) : null,
      p99Ms: missing > 0 ? null : quantile(lat, 0.99),
      maxMs: lat.length ? lat[lat.length - 1] : null,
      overTargetCycles: lat.filter((ms) => ms >= LATENCY_TARGET_MS).length,
      majorCollections: gc1.count - gc0.count,
      majorCollectionPausesMs: round(gc1.pauseMs - gc0.pauseMs),
    };
    log(
      `latency (${result.path}, load ${result.loadSpansPerSec} spans/s, ${result.cycles} cycles): ` +
        (missing > 0
          ? `${missing} cycles not alerted ${waitedMs} ms after the last one (the processor fell behind); p50 of the others ${result.p50Ms} ms`
          : `p50 ${result.p50Ms} ms, p90 ${result.p90Ms} ms, p99 ${result.p99Ms} ms, max ${result.maxMs} ms`) +
        `; ${result.overTargetCycles} cycles took ${LATENCY_TARGET_MS} ms or more; ${result.majorCollections} major collections of the processor's event loop during the cycles (their final pauses ${result.majorCollectionPausesMs} ms)`,
    );
    return result;
  } finally {
    await producer.disconnect();
    await cycleProducer.disconnect();
    await alerts.disconnect();
    child.kill('SIGTERM');
    await new Promise((ok) => child.once('exit', ok));
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const broker = await benchBroker(log);
  brokerPid = broker.pid;
  const stop = () => void broker.stop().finally(() => process.exit(130));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const out: Record<string, unknown> = { broker: broker.owned ? 'scripts/kafka.sh' : broker.bootstrap };
  try {
    if (args.parts.has('throughput')) out.throughput = await throughput(broker.bootstrap, args);
    if (args.parts.has('latency') || args.parts.has('latency-all')) out.latency = await latency(broker.bootstrap, args, 'all');
    if (args.parts.has('latency') || args.parts.has('latency-both')) out.latencyScaleOut = await latency(broker.bootstrap, args, 'both');
  } finally {
    await broker.stop();
  }
  console.log(JSON.stringify(out));
}

// The run path is measured as `waitgraph run` runs it: with its V8 flags (bin/v8-flags.js), which V8 reads
// only when it starts; so the benchmark starts itself again with them, as bin/waitgraph.js does.
if (process.execArgv.some((a) => a.startsWith('--max-semi-space-size'))) await main();
else {
  const child = spawn(process.execPath, [...process.execArgv, ...RUN_V8_FLAGS, fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => process.exit(code ?? (signal === null ? 1 : 128 + (signal === 'SIGINT' ? 2 : 15))));
}
