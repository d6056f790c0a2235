/**
 * The decode pool: turns OTLP payloads into `WaitInput`s (decoded, cut to what detection reads) on worker
 * threads, so the event loop is left to kafkajs and the engine. Decoding is the costliest step per byte;
 * on the 2-core benchmark machine moving it off the event loop is what lets the engine have a core to itself.
 *
 * The hand-over is the cost of a thread: the payloads go over as one transferred buffer (a copy of the
 * Kafka message values, no per-message cloning), and the cut records come back by structured clone, which
 * is cheap because the cut is small (a few fields a span, one resource object shared by a message's
 * spans). With `threads: 0` the same cut runs on the event loop.
 *
 * A worker that dies or throws anything but a decoding error is a bug: every decode in flight and after
 * rejects with it, and the caller stops.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { DecodeError, type DecodeLocation } from '../decode/decode-error.js';
import { WaitgraphError } from '../errors.js';
import type { DecodeOutcome } from '../io/index.js';
import type { WaitFilterOptions } from '../scale/wait-records.js';
import { WaitInputCutter, type OtlpPayload, type WaitInput } from './wait-input.js';

/** Options of `DecodePool`. */
export interface DecodePoolOptions {
  /** Worker threads; 0 decodes on the event loop. Default 1. */
  threads?: number;
  /** What the cut keeps (proxy services). Default: see `WaitFilterOptions`. */
  filter?: WaitFilterOptions;
}

/** Payloads to a worker: their bytes back to back in one buffer. */
interface DecodeRequest {
  id: number;
  payloads: Omit<OtlpPayload, 'bytes'>[];
  bytes: Uint8Array;
  /** Where each payload's bytes end in `bytes`. */
  ends: Uint32Array;
}

/** A decoding error as it crosses threads: a DecodeError's parts, or another `bad-input` error's message. */
type WireError = { detail: string; where: DecodeLocation } | { message: string };

/** A worker's answer: an outcome per payload, or the bug that stopped it. */
type DecodeReply = { id: number; outcomes: ({ value: WaitInput } | { error: WireError })[] } | { id: number; bug: string };

/** Decodes and cuts every payload; a payload the decoder rejects gives its error, anything else throws. */
function cutAll(cutter: WaitInputCutter, payloads: readonly OtlpPayload[]): DecodeOutcome<WaitInput>[] {
  return payloads.map((p) => {
    try {
      return { value: cutter.cut(p) };
    } catch (err) {
      if (err instanceof WaitgraphError && err.code === 'bad-input') return { error: err };
      throw err;
    }
  });
}

function toWire(err: WaitgraphError): WireError {
  if (err instanceof DecodeError) {
    return { detail: err.detail, where: { source: err.source, line: err.line, column: err.column, offset: err.offset, path: err.path } };
  }
  return { message: err.message };
}

function fromWire(w: WireError): WaitgraphError {
  return 'detail' in w ? new DecodeError(w.detail, w.where) : new WaitgraphError('bad-input', w.message);
}

/** The worker's side: answers requests until it is terminated. */
export function serveDecodeRequests(port: { on(event: 'message', f: (r: DecodeRequest) => void): void; postMessage(m: DecodeReply): void }, filter: WaitFilterOptions): void {
  const cutter = new WaitInputCutter(filter);
  port.on('message', (req) => {
    let reply: DecodeReply;
    try {
      const payloads: OtlpPayload[] = req.payloads.map((p, i) => ({ ...p, bytes: req.bytes.subarray(i === 0 ? 0 : req.ends[i - 1], req.ends[i]) }));
      reply = { id: req.id, outcomes: cutAll(cutter, payloads).map((o) => ('value' in o ? o : { error: toWire(o.error) })) };
    } catch (err) {
      reply = { id: req.id, bug: err instanceof Error ? (err.stack ?? err.message) : String(err) };
    }
    port.postMessage(reply);
  });
}

/**
 * The worker's entry, as a CommonJS script: loads tsx (the sources are TypeScript and there is no build
 * step) and then the worker module. Both by absolute URL, so it works from any working directory.
 */
function bootstrap(): string {
  // tsx's ESM API, found through its package's export map (import.meta.resolve is not there under vitest).
  const manifest = createRequire(import.meta.url).resolve('tsx/package.json');
  const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as { exports: Record<string, { import: { default: string } }> };
  const tsx = new URL(pkg.exports['./esm/api']!.import.default, pathToFileURL(manifest)).href;
  const entry = new URL('./decode-worker.ts', import.meta.url).href;
  return `import(${JSON.stringify(tsx)}).then((t) => { t.register(); return import(${JSON.stringify(entry)}); })`;
}

interface ThreadState {
  worker: Worker;
  pending: Map<number, { ok: (o: DecodeOutcome<WaitInput>[]) => void; fail: (e: unknown) => void }>;
}

/** Decodes payloads on worker threads (or on the event loop). See the module comment. */
export class DecodePool {
  private readonly threads: ThreadState[] = [];
  private readonly filter: WaitFilterOptions;
  private readonly size: number;
  private inThread: WaitInputCutter | undefined;
  private nextId = 0;
  private failure: unknown;
  private closed = false;

  constructor(options: DecodePoolOptions = {}) {
    const threads = options.threads ?? 1;
    if (!Number.isInteger(threads) || threads < 0) throw new WaitgraphError('bad-config', `DecodePool: threads must be a whole number >= 0, not ${threads}`);
    this.size = threads;
    this.filter = options.filter ?? {};
  }

  /** Starts the workers; resolves when each has loaded its code. */
  async start(): Promise<void> {
    if (this.size === 0) {
      this.inThread = new WaitInputCutter(this.filter);
      return;
    }
    const code = bootstrap();
    await Promise.all(
      Array.from({ length: this.size }, async () => {
        const worker = new Worker(code, { eval: true, workerData: { filter: this.filter } });
        const state: ThreadState = { worker, pending: new Map() };
        this.threads.push(state);
        await new Promise<void>((ok, fail) => {
          const early = (err: unknown) => fail(err instanceof Error ? err : new WaitgraphError('internal', `decode worker exited with ${String(err)} while starting`));
          worker.once('message', () => {
            worker.off('error', early).off('exit', early);
            ok();
          });
          worker.once('error', early).once('exit', early);
        });
        worker.on('message', (reply: DecodeReply) => this.answered(state, reply));
        worker.on('error', (err) => this.broke(err));
        worker.on('exit', (code) => {
          if (!this.closed) this.broke(new WaitgraphError('internal', `a decode worker exited (code ${code})`));
        });
      }),
    ).catch(async (err: unknown) => {
      await this.shutdown();
      throw err instanceof WaitgraphError ? err : new WaitgraphError('internal', `decode workers did not start: ${(err as Error).message}`, { cause: err });
    });
  }

  /** Decodes and cuts the payloads: one outcome each, in order. Rejects only for a bug. */
  decode(payloads: readonly OtlpPayload[]): Promise<DecodeOutcome<WaitInput>[]> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.inThread) {
      try {
        return Promise.resolve(cutAll(this.inThread, payloads));
      } catch (err) {
        return Promise.reject(err);
      }
    }
    if (this.closed || this.threads.length === 0) return Promise.reject(new WaitgraphError('bad-usage', 'DecodePool: decode() before start() or after shutdown()'));
    let total = 0;
    for (const p of payloads) total += p.bytes.byteLength;
    const bytes = new Uint8Array(total);
    const ends = new Uint32Array(payloads.length);
    let at = 0;
    payloads.forEach((p, i) => {
      bytes.set(p.bytes, at);
      ends[i] = at += p.bytes.byteLength;
    });
    // The least busy worker: with one, always that one.
    let state = this.threads[0]!;
    for (const t of this.threads) if (t.pending.size < state.pending.size) state = t;
    const id = this.nextId++;
    const request: DecodeRequest = { id, payloads: payloads.map(({ signal, encoding, name }) => ({ signal, encoding, name })), bytes, ends };
    return new Promise((ok, fail) => {
      state.pending.set(id, { ok, fail });
      state.worker.postMessage(request, [bytes.buffer, ends.buffer]);
    });
  }

  /** Stops the workers; decodes in flight reject. Idempotent. */
  async shutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const stopped = new WaitgraphError('io', 'DecodePool: shut down', { retriable: false });
    for (const t of this.threads) {
      for (const p of t.pending.values()) p.fail(stopped);
      t.pending.clear();
    }
    await Promise.allSettled(this.threads.map((t) => t.worker.terminate()));
  }

  private answered(state: ThreadState, reply: DecodeReply): void {
    const p = state.pending.get(reply.id);
    if (!p) return;
    state.pending.delete(reply.id);
    if ('bug' in reply) return p.fail(new WaitgraphError('internal', `decode worker: ${reply.bug}`));
    p.ok(reply.outcomes.map((o) => ('value' in o ? o : { error: fromWire(o.error) })));
  }

  private broke(err: unknown): void {
    if (this.failure !== undefined || this.closed) return;
    this.failure = err instanceof WaitgraphError ? err : new WaitgraphError('internal', `a decode worker failed: ${(err as Error)?.message ?? String(err)}`, { cause: err });
    for (const t of this.threads) {
      for (const p of t.pending.values()) p.fail(this.failure);
      t.pending.clear();
    }
  }
}
