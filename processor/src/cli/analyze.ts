/**
 * `waitgraph analyze`: reads files and directories of recorded spans, feeds the detector, and prints the
 * findings as a report or as JSON. A malformed file is reported with its location and skipped; the
 * others are still analyzed.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { DecodeError } from '../decode/index.js';
import { Detector } from '../engine/index.js';
import { WaitgraphError } from '../errors.js';
import { WholeInputCut } from '../scale/wait-cut.js';
import { ANALYZE_HELP, EXIT, parse, type CliIo } from './main.js';
import { ansi, plain, renderReport } from './report.js';

const INPUT_EXTENSIONS = /\.(json|jsonl|ndjson|pb|bin|proto|otlp|protobuf)$/i;

/** Every input file under the given paths: files named on the command line, and known kinds under directories. */
async function inputFiles(paths: string[], errors: string[]): Promise<string[]> {
  const out: string[] = [];
  const walk = async (p: string, named: boolean) => {
    let st;
    try {
      st = await stat(p);
    } catch (e) {
      errors.push(`${p}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (e as Error).message}`);
      return;
    }
    if (st.isDirectory()) {
      const entries = (await readdir(p)).sort();
      for (const name of entries) {
        if (name.startsWith('.')) continue;
        await walk(join(p, name), false);
      }
    } else if (named || INPUT_EXTENSIONS.test(p)) {
      out.push(p);
    }
  };
  for (const p of paths) await walk(p, true);
  return out;
}

/** Runs `waitgraph analyze`. */
export async function analyzeCommand(argv: string[], io: CliIo): Promise<number> {
  const args = parse(
    {
      options: {
        json: { type: 'boolean' },
        'jaeger-url': { type: 'string' },
        'proxy-service': { type: 'string', multiple: true },
        'max-victims': { type: 'string' },
        color: { type: 'boolean' },
        'no-color': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    },
    argv,
    io,
    ANALYZE_HELP,
  );
  if (!args) return EXIT.ERROR;
  const v = args.values as Record<string, string | boolean | string[] | undefined>;
  if (v.help) {
    io.stdout(ANALYZE_HELP);
    return EXIT.NONE;
  }
  if (args.positionals.length === 0) {
    io.stderr(`waitgraph analyze: no input: name one or more files or directories\n\n${ANALYZE_HELP}`);
    return EXIT.ERROR;
  }
  const maxVictims = v['max-victims'] === undefined ? undefined : Number(v['max-victims']);
  const proxyServices = (v['proxy-service'] as string[] | undefined) ?? [];
  let detector: Detector;
  try {
    detector = new Detector({
      jaegerUrl: (v['jaeger-url'] as string | undefined) ?? io.env.WAITGRAPH_JAEGER_URL ?? undefined,
      proxyServices,
      maxVictims,
    });
  } catch (e) {
    if (e instanceof WaitgraphError) {
      io.stderr(`waitgraph analyze: ${e.message}\n`);
      return EXIT.ERROR;
    }
    throw e;
  }

  const errors: string[] = [];
  const files = await inputFiles(args.positionals, errors);
  // Only what detection reads of the input is decoded (see WholeInputCut): the findings are those of all of it.
  const cut = new WholeInputCut({ proxyServices });
  for (const file of files) {
    let buf: Buffer;
    try {
      buf = await readFile(file);
    } catch (e) {
      errors.push(`${file}: ${(e as Error).message}`);
      continue;
    }
    const bad: DecodeError[] = [];
    cut.addBuffer(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), file, bad);
    for (const err of bad) errors.push(err.message);
  }
  for (const batch of cut.finish()) detector.addBatch(batch);
  detector.detect();
  const findings = detector.findings();

  for (const e of errors) io.stderr(`waitgraph analyze: ${e}\n`);
  if (v.json) {
    io.stdout(JSON.stringify({ findings }, null, 2) + '\n');
  } else {
    const color = v['no-color'] ? false : v.color ? true : io.isTTY && !io.env.NO_COLOR;
    io.stdout(renderReport(findings, color ? ansi : plain) + '\n');
  }
  if (errors.length) return EXIT.ERROR;
  return findings.length ? EXIT.FOUND : EXIT.NONE;
}
