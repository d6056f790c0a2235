/**
 * The small logging interface the I/O adapters write to, and two implementations: JSON lines on stderr (the
 * default) and silence (tests). The wiring may pass any object of this shape, e.g. a pino logger adapter.
 */
import { logLevel, type logCreator } from 'kafkajs';

/** Structured fields of a log record. */
export type LogFields = Record<string, unknown>;

/** Where the adapters report what an operator should know. */
export interface Logger {
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

function stderrRecord(level: string) {
  return (message: string, fields?: LogFields): void => {
    process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, message, ...fields })}\n`);
  };
}

/** One JSON object a line on stderr: `{"time","level","message",...fields}`. */
export const stderrLogger: Logger = { info: stderrRecord('info'), warn: stderrRecord('warn'), error: stderrRecord('error') };

/** Drops everything. */
export const silentLogger: Logger = { info() {}, warn() {}, error() {} };

/**
 * Routes kafkajs's own log lines to a Logger, as warnings: kafkajs logs every failed request at ERROR while
 * it retries (a broker restart produces dozens), which is not an error of the processor. Failures that
 * outlast the retries reach the adapters as exceptions and are reported there.
 */
export function kafkajsLogCreator(logger: Logger): logCreator {
  return () =>
    ({ namespace, level, log }) => {
      if (level > logLevel.WARN) return;
      const { message, ...fields } = log;
      logger.warn(`kafkajs ${namespace}: ${message}`, fields);
    };
}
