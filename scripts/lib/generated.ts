/**
 * Generated files kept in the repository (JSON Schemas, scenario fixtures): write them, or with
 * `--check` report the ones that differ from their source. The exit code is 1 when any is out of date.
 */
import { readFileSync, writeFileSync } from 'node:fs';

/**
 * Writes `files` (name → text) into `dir`, or checks them when the command line has `--check`.
 * `shown` is how the folder is named in messages, `regenerate` the command that rewrites them.
 */
export function writeOrCheck(files: Record<string, string>, dir: URL, shown: string, regenerate: string): void {
  const check = process.argv.includes('--check');
  let stale = 0;
  for (const [file, text] of Object.entries(files)) {
    const path = new URL(file, dir);
    if (!check) {
      writeFileSync(path, text);
      console.log(`wrote ${shown}${file}`);
      continue;
    }
    let old = '';
    try {
      old = readFileSync(path, 'utf8');
    } catch {}
    if (old !== text) {
      console.error(`${shown}${file} is out of date: run ${regenerate}`);
      stale++;
    }
  }
  process.exitCode = stale ? 1 : 0;
}
