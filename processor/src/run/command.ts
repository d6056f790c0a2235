/**
 * `waitgraph run`: reads the options (flags over environment over `--config` file over defaults), starts
 * the processor, and stops it gracefully on SIGINT or SIGTERM. With `--demo`, runs the demo instead.
 *
 * Exit codes: 0 stopped by a signal (or the demo showed its alert), 1 stopped by a failure, 2 bad options.
 */
import { EXIT, parse, type CliIo } from '../cli/main.js';
import { WaitgraphError } from '../errors.js';
import { runDemo } from './demo.js';
import { createLogger } from './logger.js';
import { optionHelp, optionsFromEnv, optionsFromFlags, parseArgsOptions, readConfigFile, resolveRunOptions, type RunOptions } from './options.js';
import { WaitgraphProcessor } from './processor.js';
import { ScaleProcessor } from '../scale/role.js';

/** The help of `waitgraph run`. */
export const RUN_HELP = `Usage: waitgraph run [options]

Runs the deadlock detector as a service: takes spans over OTLP/HTTP (and from Kafka with
--kafka-brokers), keeps the live wait-for graph, and publishes an alert when a deadlock opens or
resolves: on stdout, to a JSON-lines file, and to the Kafka alert topic. With no options it needs no
server: point an OpenTelemetry SDK or Collector (otlphttp exporter) at http://127.0.0.1:4318.

  --demo                 post a recorded incident to a fresh processor, print the alert, exit
  --json                 alerts on stdout as JSON lines (same as --stdout json)
  --config <file>        a JSON object of options (keys as below in camelCase: "staleAfter": "10s")
  -h, --help             this help

${optionHelp()}

Defaults in [brackets]. Durations take a unit: 250ms, 10s, 10m, 1h (a bare number is ms). Every option
can also be set as WAITGRAPH_<OPTION> (--kafka-brokers as WAITGRAPH_KAFKA_BROKERS) or in the --config
file; flags win over the environment, which wins over the file. Logs go to stderr, alerts to stdout.

Exit codes: 0 stopped by SIGINT/SIGTERM (or the demo alerted), 1 stopped by a failure, 2 bad options.
`;

/** Runs `waitgraph run`. */
export async function runCommand(argv: string[], io: CliIo): Promise<number> {
  const args = parse(
    { options: { ...parseArgsOptions(), demo: { type: 'boolean' }, json: { type: 'boolean' }, config: { type: 'string' }, help: { type: 'boolean', short: 'h' } } },
    argv,
    io,
    RUN_HELP,
  );
  if (!args) return EXIT.ERROR;
  const v = args.values as Record<string, unknown>;
  if (v.help) {
    io.stdout(RUN_HELP);
    return EXIT.NONE;
  }
  if (args.positionals.length > 0) {
    io.stderr(`waitgraph run: unexpected argument ${JSON.stringify(args.positionals[0])}\n\n${RUN_HELP}`);
    return EXIT.ERROR;
  }
  let options;
  try {
    const file = typeof v.config === 'string' ? readConfigFile(v.config) : {};
    const flags: RunOptions = optionsFromFlags(v);
    if (v.json) flags.stdout = 'json';
    const demo: RunOptions = v.demo
      ? // The demo must not collide with a running processor, nor leave open deadlocks in its record.
        { port: 0, alertFile: '', statsInterval: 0, logLevel: 'warn' }
      : {};
    options = resolveRunOptions(demo, file, optionsFromEnv(io.env), flags);
  } catch (err) {
    if (!(err instanceof WaitgraphError)) throw err;
    io.stderr(`waitgraph run: ${err.message}\n`);
    return EXIT.ERROR;
  }
  const logger = createLogger({ level: options.logLevel, format: options.logFormat, write: (line) => io.stderr(line + '\n') });
  const color = io.isTTY && !io.env.NO_COLOR;

  if (v.demo) {
    try {
      return await runDemo(options, { logger, stdout: io.stdout, color });
    } catch (err) {
      io.stderr(`waitgraph run --demo: ${(err as Error).message}\n`);
      return EXIT.FOUND;
    }
  }

  let processor: WaitgraphProcessor | ScaleProcessor;
  try {
    processor = options.role === 'all' ? new WaitgraphProcessor(options, { logger, stdout: io.stdout, color }) : new ScaleProcessor(options.role, options, logger);
  } catch (err) {
    if (!(err instanceof WaitgraphError)) throw err;
    io.stderr(`waitgraph run: ${err.message}\n`);
    return EXIT.ERROR;
  }
  let signalled: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    if (signalled) {
      // A second signal: the operator does not want to wait for the graceful shutdown.
      logger.warn('second signal: exiting now', { signal: sig });
      process.exit(130);
    }
    signalled = sig;
    void processor.shutdown(sig);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await processor.start();
    await processor.stopped();
    return EXIT.NONE;
  } catch (err) {
    if (signalled) return EXIT.NONE;
    const e = err as Error;
    logger.error('stopped by a failure', { error: e.message, code: (err as WaitgraphError).code });
    return err instanceof WaitgraphError && (err.code === 'bad-config' || err.code === 'bad-usage') ? EXIT.ERROR : EXIT.FOUND;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    // Whatever a client library still holds open must not keep a processor stopped by a signal alive.
    if (signalled) setTimeout(() => process.exit(), 2000).unref();
  }
}
