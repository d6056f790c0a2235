/**
 * The contrib-style instrumentations in an ESM application: with OpenTelemetry's import-in-the-middle
 * hook registered (`node --import`), a library imported as ESM is patched as a required one is, with no
 * explicit wrap. The application runs in a process of its own, as a user's would.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { EVENT } from '../../schemas/index.js';

const run = promisify(execFile);
const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

describe('instrumentations in an ESM application', () => {
  /** Runs the application with these `--import`s; returns its spans' event names. */
  async function app(imports: string[]): Promise<Record<string, string[]>> {
    const args = [...imports.flatMap((i) => ['--import', i]), here('./esm/app.mts')];
    const { stdout } = await run(process.execPath, args, { cwd: fileURLToPath(new URL('../..', import.meta.url)), timeout: 60_000 });
    return JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, string[]>;
  }

  it('patch async-mutex imported as ESM, through the import-in-the-middle hook', async () => {
    const spans = await app(['tsx', here('./esm/register.mjs')]);
    expect(spans.first).toEqual([EVENT.LOCK_ACQUIRE, EVENT.LOCK_RELEASE]);
    expect(spans.second).toEqual([EVENT.LOCK_WAIT, EVENT.LOCK_ACQUIRE, EVENT.LOCK_RELEASE]);
  });

  it('record nothing for it without the hook: that is what the explicit wraps are for', async () => {
    expect(await app(['tsx'])).toEqual({ first: [], second: [] });
  });
});
