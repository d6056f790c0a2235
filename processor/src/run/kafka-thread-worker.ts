/**
 * The Kafka thread's side of `KafkaThreadInput` (kafka-thread.ts): a `KafkaSource` that decodes and cuts
 * each message (`WaitInputCutter.cutKept`: OTLP protobuf traces up to their kept spans' records) and sends
 * each fetched batch, as one cut frame, to the event loop that runs detection. It reads on while the event
 * loop takes the batch in (at most `MAX_IN_FLIGHT` batches ahead), and before each commit asks the event
 * loop to settle: offsets are still committed only once their events are in the graph and their alerts out. The messages between the two are `ToThread` and
 * `FromThread` (kafka-thread.ts). Started by thread-entry.mjs. A thread runs one source at a time, and may
 * run another after it (each with a cut of its own): its code stays warm.
 */
import { parentPort } from 'node:worker_threads';
import { KafkaSource, type BatchInfo, type DecodedMessage } from '../io/index.js';
import { CutFrameWriter, frameTransfer } from './cut-frame.js';
import { payloadOf } from './kafka-input.js';
import type { FromThread, ThreadSourceOptions, ToThread } from './kafka-thread.js';
import { errorFromWire, relayLogger, relayGc, relayMetrics, reportLife } from './threads.js';
import { WaitInputCutter, type KeptInput, type WaitInput } from './wait-input.js';

const port = parentPort!;
const send = (m: FromThread, transfer?: ArrayBuffer[]) => port.postMessage(m, transfer);

const logger = relayLogger(send);
const metrics = relayMetrics(send);
relayGc(send);

/** Answers from the event loop, by request id. */
const waiting = new Map<number, { ok: () => void; fail: (err: unknown) => void }>();
let nextId = 1;
function ask(make: (id: number) => { m: FromThread; transfer?: ArrayBuffer[] }): Promise<void> {
  const id = nextId++;
  return new Promise<void>((ok, fail) => {
    waiting.set(id, { ok, fail });
    const { m, transfer } = make(id);
    send(m, transfer);
  });
}

/** Batches sent that the event loop has not yet taken in, at most. */
const MAX_IN_FLIGHT = 4;

/** One source on the thread, from `start` until it has stopped. */
class Run {
  private inFlight = 0;
  private slotFree: (() => void) | undefined;
  /** Why the event loop could not take a batch in: the source stops with it. */
  private failure: unknown;
  private readonly cutter: WaitInputCutter;
  private readonly writer = new CutFrameWriter();
  readonly source: KafkaSource<WaitInput | KeptInput>;

  constructor(options: ThreadSourceOptions) {
    const { proxyServices, ...source } = options;
    this.cutter = new WaitInputCutter({ proxyServices });
    this.source = new KafkaSource<WaitInput | KeptInput>({
      ...source,
      logger,
      metrics,
      onStatus: (status) => send({ t: 'status', status }),
      onAssign: (partitions) => send({ t: 'assign', partitions }),
      decode: (m) => this.cutter.cutKept(payloadOf(m)),
      apply: (messages, info) => this.apply(messages, info),
      beforeCommit: async () => {
        await ask((id) => ({ m: { t: 'settle', id } }));
        if (this.failure !== undefined) throw this.failure;
      },
    });
  }

  /**
   * The batch is applied for the source once the event loop has it queued: the thread reads on while the
   * event loop takes it in. Commits still wait for it to be in the graph, and its alerts out (beforeCommit).
   */
  private async apply(messages: DecodedMessage<WaitInput | KeptInput>[], info: BatchInfo): Promise<void> {
    while (this.inFlight >= MAX_IN_FLIGHT && this.failure === undefined) await new Promise<void>((ok) => (this.slotFree = ok));
    if (this.failure !== undefined) throw this.failure;
    for (const { value } of messages) this.writer.add(value);
    const frame = this.writer.take();
    const observedAtMs = messages.map((m) => m.message.timestampMs);
    this.inFlight++;
    ask((id) => ({ m: { t: 'batch', id, info, observedAtMs, frame }, transfer: frameTransfer(frame) })).then(
      () => this.freeSlot(),
      (err: unknown) => {
        this.failure ??= err;
        this.freeSlot();
      },
    );
  }

  private freeSlot(): void {
    this.inFlight--;
    const wake = this.slotFree;
    this.slotFree = undefined;
    wake?.();
  }
}

let run: Run | undefined;

port.on('message', (m: ToThread) => {
  switch (m.t) {
    case 'start': {
      if (run !== undefined) {
        send({ t: 'start-failed', error: { message: 'KafkaThreadInput: the thread runs a source already', code: 'bad-usage' } });
        break;
      }
      const current = new Run(m.options);
      run = current;
      reportLife(send, current.source, () => {
        if (run === current) run = undefined;
      });
      break;
    }
    case 'answer': {
      const w = waiting.get(m.id);
      waiting.delete(m.id);
      if (m.error === undefined) w?.ok();
      else w?.fail(errorFromWire(m.error));
      break;
    }
    case 'shutdown':
      // The event loop goes on answering until the source has stopped: what was applied gets committed.
      void run?.source.shutdown(m.graceMs);
      break;
  }
});
