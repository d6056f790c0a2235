/**
 * Overhead benchmark of the instrumentation (a script, not a test): nanoseconds per operation of the
 * instrumented lock or pool against the plain one, for
 *
 *   - an uncontended acquire + release of async-mutex's Mutex, wrapped (`instrumentAsyncMutex`) vs plain;
 *   - an uncontended acquire + release of waitgraph's Mutex vs a plain mutex of the same algorithm (FIFO
 *     hand-over, a releaser closure) without the recording;
 *   - a checkout + release of a generic-pool Pool, wrapped (`instrumentGenericPool`) vs plain;
 *
 * first with no SDK registered, then with a Node tracing SDK registered the documented way (a batch
 * processor and waitgraph's snapshot processor, exporting nowhere) and the operations running inside
 * recording spans (a new span every 32 operations, for the plain side too, since the SDK keeps at most
 * 128 events per span). Rounds alternate which side runs first; the medians of ns/op are reported, and
 * the added cost is the median of the per-round differences.
 *
 * Targets: under 2 µs added per uncontended acquire + release with an SDK, under 100 ns with none.
 * Run: npm run bench:instrumentation [-- --quick]. The last line printed is a JSON object.
 */
import { context, trace, type Tracer } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BatchSpanProcessor, TracerProvider, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace';
import { Mutex as AsyncMutex } from 'async-mutex';
import { createPool, type Pool } from 'generic-pool';
import { instrumentAsyncMutex, instrumentGenericPool, Mutex, waitgraphSnapshots } from '../index.js';

const QUICK = process.argv.includes('--quick');
const ROUNDS = QUICK ? 3 : 9;
const SPAN_EVERY = 32;
const TARGET_NS = { sdk: 2000, none: 100 };

/** A plain FIFO mutex: waitgraph's algorithm without the recording, the fair baseline for its Mutex. */
class PlainMutex {
  #locked = false;
  readonly #queue: ((release: () => void) => void)[] = [];

  acquire(): Promise<() => void> {
    if (!this.#locked) {
      this.#locked = true;
      return Promise.resolve(this.#releaser());
    }
    return new Promise((resolve) => this.#queue.push(resolve));
  }

  #releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#queue.shift();
      if (next === undefined) this.#locked = false;
      else next(this.#releaser());
    };
  }
}

/** One operation, run `n` times in a row. */
type Loop = (n: number) => Promise<void>;

interface Case {
  name: string;
  /** Operations per round without an SDK; with one, a quarter (each costs more). */
  ops: number;
  plain: Loop;
  instrumented: Loop;
  /** Whether the target applies (acquire/release of a lock; a pool checkout has no stated target). */
  lock: boolean;
}

function lockLoop(lock: { acquire(): Promise<() => void> }): Loop {
  return async (n) => {
    for (let i = 0; i < n; i++) (await lock.acquire())();
  };
}

function poolLoop(pool: Pool<object>): Loop {
  return async (n) => {
    for (let i = 0; i < n; i++) await pool.release(await pool.acquire());
  };
}

function newPool(): Pool<object> {
  return createPool({ create: async () => ({}), destroy: async () => {} }, { max: 4 });
}

const cases: Case[] = [
  {
    name: 'async-mutex Mutex acquire+release',
    ops: QUICK ? 50_000 : 200_000,
    plain: lockLoop(new AsyncMutex()),
    instrumented: lockLoop(instrumentAsyncMutex(new AsyncMutex(), { id: 'bench' })),
    lock: true,
  },
  {
    name: 'waitgraph Mutex acquire+release',
    ops: QUICK ? 50_000 : 200_000,
    plain: lockLoop(new PlainMutex()),
    instrumented: lockLoop(new Mutex({ id: 'bench' })),
    lock: true,
  },
  {
    name: 'generic-pool checkout+release',
    ops: QUICK ? 20_000 : 80_000,
    plain: poolLoop(newPool()),
    instrumented: poolLoop(instrumentGenericPool(newPool(), { name: 'bench' })),
    lock: false,
  },
];

/** Runs `loop` `n` times, inside recording spans when a tracer is given; returns ns per operation. */
async function timed(loop: Loop, n: number, tracer: Tracer | undefined): Promise<number> {
  const start = process.hrtime.bigint();
  if (tracer === undefined) {
    await loop(n);
  } else {
    for (let done = 0; done < n; done += SPAN_EVERY) {
      const span = tracer.startSpan('bench');
      await context.with(trace.setSpan(context.active(), span), () => loop(Math.min(SPAN_EVERY, n - done)));
      span.end();
    }
  }
  return Number(process.hrtime.bigint() - start) / n;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

interface Result {
  case: string;
  sdk: 'none' | 'registered';
  plainNsPerOp: number;
  instrumentedNsPerOp: number;
  addedNs: number;
  ratio: number;
  targetNs?: number;
  withinTarget?: boolean;
}

async function measure(sdk: Result['sdk'], tracer: Tracer | undefined): Promise<Result[]> {
  const results: Result[] = [];
  for (const c of cases) {
    const n = tracer === undefined ? c.ops : Math.floor(c.ops / 4);
    // warm both paths up before timing (JIT, pool resources)
    for (let r = 0; r < 2; r++) {
      await timed(c.plain, n, tracer);
      await timed(c.instrumented, n, tracer);
    }
    const plain: number[] = [];
    const instrumented: number[] = [];
    const added: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      // alternate which side goes first, so drift and GC debt do not favour one
      const first = r % 2 === 0 ? c.plain : c.instrumented;
      const a = await timed(first, n, tracer);
      const b = await timed(first === c.plain ? c.instrumented : c.plain, n, tracer);
      const [p, i] = first === c.plain ? [a, b] : [b, a];
      plain.push(p);
      instrumented.push(i);
      added.push(i - p);
    }
    const p = median(plain);
    const i = median(instrumented);
    // the median of the paired differences: steadier than the difference of the medians on a busy machine
    const d = median(added);
    const result: Result = {
      case: c.name,
      sdk,
      plainNsPerOp: round(p),
      instrumentedNsPerOp: round(i),
      addedNs: round(d),
      ratio: Math.round((i / p) * 100) / 100,
    };
    if (c.lock) {
      result.targetNs = TARGET_NS[sdk === 'none' ? 'none' : 'sdk'];
      result.withinTarget = d < result.targetNs;
    }
    results.push(result);
  }
  return results;
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}

function print(results: Result[]): void {
  const pad = (s: string, n: number) => s.padEnd(n);
  const num = (x: number, n: number) => x.toFixed(1).padStart(n);
  console.log(`${pad('case', 36)} ${pad('sdk', 10)} ${'plain ns/op'.padStart(12)} ${'instr ns/op'.padStart(12)} ${'added ns'.padStart(9)} ${'ratio'.padStart(6)}  target`);
  for (const r of results) {
    const target = r.targetNs === undefined ? '-' : `< ${r.targetNs} ns ${r.withinTarget ? 'ok' : 'MISSED'}`;
    console.log(
      `${pad(r.case, 36)} ${pad(r.sdk, 10)} ${num(r.plainNsPerOp, 12)} ${num(r.instrumentedNsPerOp, 12)} ${num(r.addedNs, 9)} ${r.ratio.toFixed(2).padStart(6)}  ${target}`,
    );
  }
}

/** An exporter that drops everything: the benchmark measures recording, not shipping. */
const nowhere: SpanExporter = {
  export: (_spans: ReadableSpan[], done) => done({ code: 0 }),
  shutdown: async () => {},
};

async function main(): Promise<void> {
  const without = await measure('none', undefined);

  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  const provider = new TracerProvider({
    spanProcessors: [new BatchSpanProcessor({ exporter: nowhere }), waitgraphSnapshots(nowhere)],
  });
  trace.setGlobalTracerProvider(provider);
  const withSdk = await measure('registered', provider.getTracer('bench'));
  await provider.shutdown();

  const results = [...without, ...withSdk];
  print(results);
  const ok = results.every((r) => r.withinTarget !== false);
  console.log(
    JSON.stringify({
      benchmark: 'instrumentation-overhead',
      node: process.version,
      rounds: ROUNDS,
      targetsNs: TARGET_NS,
      ok,
      results,
    }),
  );
}

await main();
