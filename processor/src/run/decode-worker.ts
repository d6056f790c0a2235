/**
 * The entry of a decode worker thread (see decode-pool.ts): says it is ready, then answers decode requests
 * from the pool until it is terminated.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { WaitgraphError } from '../errors.js';
import { serveDecodeRequests } from './decode-pool.js';

if (!parentPort) throw new WaitgraphError('bad-usage', 'decode-worker.ts runs as a worker thread of DecodePool');
serveDecodeRequests(parentPort, (workerData as { filter?: object } | null)?.filter ?? {});
parentPort.postMessage('ready');
