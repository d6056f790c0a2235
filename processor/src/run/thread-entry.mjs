// The entry of waitgraph's worker threads: a thread starts without the TypeScript loader of the process
// that made it (bin/waitgraph.js registers tsx; vitest transforms on its own), so this registers tsx in the
// thread, then loads the thread's module, given in `workerData.module`.
import { workerData } from 'node:worker_threads';

const { register } = await import('tsx/esm/api');
register();
await import(workerData.module);
