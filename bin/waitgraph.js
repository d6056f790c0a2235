#!/usr/bin/env node
// The waitgraph command. Runs the TypeScript sources through tsx, so there is no build step to forget.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { RUN_V8_FLAGS } from './v8-flags.js';

// `waitgraph run` keeps a large, long-lived graph while spans stream through it. With semi-spaces of 64 MiB
// (V8's default is 16), the streaming garbage dies young instead of filling the old generation, whose
// collections then paused the processor for up to seconds: at 60,000 spans/s its p99 detection latency went
// from 1.6-4.2 s to under 0.35 s (`npm run bench:kafka`). Its old generation's limit starts at 256 MiB, for
// the worker threads (bin/v8-flags.js says why). V8 reads both only when it starts, so `run` starts itself
// again with them, unless the semi-space size was given (on the command line or in NODE_OPTIONS).
const given = (a) => a.startsWith('--max-semi-space-size');
if (process.argv[2] === 'run' && !process.execArgv.some(given) && !(process.env.NODE_OPTIONS ?? '').split(/\s+/).some(given)) {
  // In a process group of its own, so that each signal reaches it once, passed on from here, whether it
  // was sent to this process (a supervisor, `kill`) or to its group (a terminal's Ctrl-C). If this process
  // is killed outright, the child sees its channel close and exits too.
  const child = spawn(process.execPath, [...process.execArgv, ...RUN_V8_FLAGS, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, WAITGRAPH_PARENT: String(process.pid) },
    detached: true,
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => process.exit(code ?? (signal === 'SIGKILL' ? 137 : 143)));
} else {
  if (process.env.WAITGRAPH_PARENT !== undefined && process.channel) {
    // Started by the lines above: go when the parent does, as if killed with it.
    process.on('disconnect', () => process.exit(137));
    process.channel.unref();
  }
  const { register } = await import('tsx/esm/api');
  register();
  const { main } = await import('../processor/src/cli/main.ts');
  process.exitCode = await main(process.argv.slice(2));
}
