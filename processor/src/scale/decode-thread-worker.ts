/**
 * The thread's side of `DecodeStageThread` (decode-thread.ts): a `DecodeStage` with the options the event
 * loop sent, its log lines and metrics sent back to the event loop's, its life stage and counts too. Started
 * by run/thread-entry.mjs. One stage for the thread's life.
 */
import { parentPort } from 'node:worker_threads';
import { errorToWire, relayLogger, relayGc, relayMetrics, reportLife } from '../run/threads.js';
import { DecodeStage } from './decode-stage.js';
import type { FromDecodeThread, ToDecodeThread } from './decode-thread.js';

const port = parentPort!;
const send = (m: FromDecodeThread) => port.postMessage(m);

const metrics = relayMetrics(send);
relayGc(send);

/** How often the counts go to the event loop, when they changed. */
const COUNTS_EVERY_MS = 100;

let stage: DecodeStage | undefined;

port.on('message', (m: ToDecodeThread) => {
  switch (m.t) {
    case 'start': {
      if (stage !== undefined) return send({ t: 'start-failed', error: { message: 'DecodeStageThread: the thread runs a stage already', code: 'bad-usage' } });
      let s: DecodeStage;
      try {
        s = new DecodeStage({ ...m.options, logger: relayLogger(send), metrics, onStatus: (status) => send({ t: 'status', status }) });
      } catch (err) {
        return send({ t: 'start-failed', error: errorToWire(err) });
      }
      stage = s;
      let sent = '';
      const sendCounts = () => {
        const counts = s.counts;
        const now = JSON.stringify(counts);
        if (now !== sent) send({ t: 'counts', counts });
        sent = now;
      };
      const timer = setInterval(sendCounts, COUNTS_EVERY_MS);
      reportLife(send, s, () => {
        clearInterval(timer);
        sendCounts();
      });
      break;
    }
    case 'shutdown':
      // Once the stage has stopped and its producer has disconnected, the thread may end.
      void (stage?.shutdown() ?? Promise.resolve()).finally(() => send({ t: 'shut-down' }));
      break;
  }
});
