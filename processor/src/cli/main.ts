/**
 * The `waitgraph` command line.
 *
 * Exit codes (as grep has them): 0 nothing found, 1 something reported, 2 bad input or bad usage (the
 * other inputs are still analyzed and their findings printed).
 */
import { parseArgs } from 'node:util';
import { RUN_HELP, runCommand } from '../run/command.js';
import { WAITGRAPH_VERSION } from '../run/version.js';
import { analyzeCommand } from './analyze.js';

/** Where the command writes; tests pass their own. */
export interface CliIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  /** Whether stdout is a terminal (for colours). */
  isTTY: boolean;
  env: NodeJS.ProcessEnv;
}

const processIo: CliIo = {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
  isTTY: Boolean(process.stdout.isTTY),
  env: process.env,
};

/** Exit codes. */
export const EXIT = { NONE: 0, FOUND: 1, ERROR: 2 } as const;

const VERSION = WAITGRAPH_VERSION;

export const HELP = `waitgraph: distributed deadlock detection from OpenTelemetry wait events

Usage:
  waitgraph analyze [options] <file or dir>...   find deadlocks in recorded spans
  waitgraph run [options]                        run the detector as a service (OTLP/HTTP, Kafka)
  waitgraph run --demo                           see it find a deadlock, then exit
  waitgraph help [command]                       help for a command
  waitgraph --version

Run 'waitgraph <command> --help' for a command's options.

Exit codes: 0 nothing found, 1 findings reported, 2 bad input or bad usage
(run: 0 stopped by a signal, 1 stopped by a failure, 2 bad options).
`;

export const ANALYZE_HELP = `Usage: waitgraph analyze [options] <file or dir>...

Reads recorded spans and reports deadlocks: active ones (still stuck at the end of the recording),
resolved ones (broken by a timeout or a cancel), and potential ones (lock-order inversions).

Inputs (format sniffed from the content; directories are read recursively):
  OTLP JSON (.json, JSON Lines .jsonl/.ndjson, the Collector file exporter's output), traces or logs
  OTLP protobuf (ExportTraceServiceRequest / TracesData, ExportLogsServiceRequest / LogsData)
  Jaeger UI "Download JSON" exports and Jaeger API responses
  Partial-span snapshots (span.partial = true) mixed in any of these

Options:
  --json                 print {"findings": [...]} (schemas/analyze-output.schema.json)
  --jaeger-url <url>     base URL of the Jaeger UI for links
                         (default: $WAITGRAPH_JAEGER_URL or http://localhost:16686)
  --proxy-service <name> treat this service's spans as proxy hops (repeatable)
  --max-victims <n>      list at most n victims per finding; all are counted (default: 100)
  --color / --no-color   colours in the text report (default: when stdout is a terminal)
  -h, --help             this help

Exit codes: 0 nothing found, 1 findings reported, 2 bad input or usage (the other inputs are still
analyzed and their findings printed; errors go to stderr with the file and line or byte offset).
`;

/** Runs the command line; resolves to the exit code. */
export async function main(argv: string[], io: CliIo = processIo): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case undefined:
    case '-h':
    case '--help':
      io.stdout(HELP);
      return cmd === undefined ? EXIT.ERROR : EXIT.NONE;
    case 'help':
      if (rest[0] === 'analyze') io.stdout(ANALYZE_HELP);
      else if (rest[0] === 'run') io.stdout(RUN_HELP);
      else io.stdout(HELP);
      return EXIT.NONE;
    case '-v':
    case '--version':
      io.stdout(`waitgraph ${VERSION}\n`);
      return EXIT.NONE;
    case 'analyze':
      return analyzeCommand(rest, io);
    case 'run':
      return runCommand(rest, io);
    default:
      io.stderr(`waitgraph: unknown command "${cmd}"\n\n${HELP}`);
      return EXIT.ERROR;
  }
}

/** Parses options, turning parse failures into usage errors. */
export function parse<T extends Parameters<typeof parseArgs>[0]>(config: T, argv: string[], io: CliIo, help: string) {
  try {
    return parseArgs({ ...config, args: argv, allowPositionals: true, strict: true });
  } catch (e) {
    io.stderr(`waitgraph: ${(e as Error).message}\n\n${help}`);
    return undefined;
  }
}
