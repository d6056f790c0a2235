/**
 * `bin/waitgraph.js run` starts itself again with 64 MiB semi-spaces and an old generation that starts at
 * 256 MiB (bin/v8-flags.js; V8 reads both only at start):
 * the processor runs in that second process, which goes when the first does, however it goes, and the
 * first exits with its code. Given the size already, it runs in the first process.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { RUN_V8_FLAGS } from '../../bin/v8-flags.js';
import { waitFor } from '../io/kafka-helpers.js';
import { startProcessor, stopProcessor } from './processes.js';

/** The pids of a process's children (Linux). */
function childrenOf(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
  } catch {
    return []; // pgrep exits 1 when there are none
  }
}

const cmdline = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');

describe('bin/waitgraph.js run', () => {
  it('runs the processor in a process of its own with its V8 flags, which stops with it', async () => {
    const p = await startProcessor(['--port', '0', '--alert-file', '', '--stdout', 'none']);
    const [child] = childrenOf(p.child.pid!);
    expect(child).toBeDefined();
    expect(RUN_V8_FLAGS).toEqual(['--max-semi-space-size=64', '--initial-old-space-size=256']);
    for (const flag of RUN_V8_FLAGS) expect(cmdline(child)).toContain(flag);
    expect(await p.metric('waitgraph_spans_received_total')).toBe(0); // the one that listens
    expect(await stopProcessor(p)).toBe(0);
    expect(existsSync(`/proc/${child}`)).toBe(false);
  });

  it('takes the processor down with it when killed outright', async () => {
    const p = await startProcessor(['--port', '0', '--alert-file', '', '--stdout', 'none']);
    const [child] = childrenOf(p.child.pid!);
    expect(child).toBeDefined();
    process.kill(p.child.pid!, 'SIGKILL'); // this process alone, not its group
    expect(await p.exited).toBe('SIGKILL');
    await waitFor('the processor to go too', async () => !existsSync(`/proc/${child}`), 5_000);
  });

  it('runs the processor itself when the semi-space size is given in NODE_OPTIONS', async () => {
    const p = await startProcessor(['--port', '0', '--alert-file', '', '--stdout', 'none'], { env: { NODE_OPTIONS: '--max-semi-space-size=32' } });
    expect(childrenOf(p.child.pid!)).toEqual([]);
    expect(await stopProcessor(p)).toBe(0);
  });
});
