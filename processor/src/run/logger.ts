/**
 * The processor's log: one line per record on stderr (stdout is for alerts), as a JSON object or as
 * logfmt, filtered by level. It is the I/O adapters' `Logger` plus `debug`, so the adapters and kafkajs
 * report through it too.
 */
import type { Logger, LogFields } from '../io/index.js';
import { LOG_LEVELS, type LogFormat, type LogLevel } from './options.js';

/** A leveled logger: the adapters' Logger plus `debug`. */
export interface RunLogger extends Logger {
  debug(message: string, fields?: LogFields): void;
}

/** Options of `createLogger`. */
export interface RunLoggerOptions {
  /** Least severe level written. Default `info`. */
  level?: LogLevel;
  /** JSON objects or logfmt. Default `json`. */
  format?: LogFormat;
  /** Where lines go. Default stderr. */
  write?: (line: string) => void;
  /** Fields added to every record, e.g. `{ instance: 'a' }`. Default none. */
  base?: LogFields;
}

/** One logfmt value: bare when it is a plain word, else a quoted JSON string. */
function logfmtValue(v: unknown): string {
  const s = typeof v === 'string' ? v : v instanceof Error ? v.message : JSON.stringify(v);
  if (s === undefined) return '""';
  return /^[^\s"=\\]+$/.test(s) ? s : JSON.stringify(s);
}

/** The keys of a record's own: a field of the same name is written as `field.<name>`. */
const OWN_KEYS = new Set(['time', 'level', 'message', 'msg']);

/** Formats one record as a line (without the newline). */
export function formatRecord(format: LogFormat, level: LogLevel, message: string, fields: LogFields): string {
  const time = new Date().toISOString();
  const keyOf = (k: string) => (OWN_KEYS.has(k) ? `field.${k}` : k);
  if (format === 'json') {
    const record: LogFields = { time, level, message };
    for (const [k, v] of Object.entries(fields)) record[keyOf(k)] = v;
    return JSON.stringify(record);
  }
  const parts = [`time=${time}`, `level=${level}`, `msg=${logfmtValue(message)}`];
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) parts.push(`${keyOf(k).replace(/[\s="]/g, '_')}=${logfmtValue(v)}`);
  return parts.join(' ');
}

/** A logger writing to stderr (or `write`) at or above `level`. */
export function createLogger(options: RunLoggerOptions = {}): RunLogger {
  const min = LOG_LEVELS.indexOf(options.level ?? 'info');
  const format = options.format ?? 'json';
  const write = options.write ?? ((line: string) => void process.stderr.write(line + '\n'));
  const base = options.base ?? {};
  const at = (level: LogLevel) =>
    LOG_LEVELS.indexOf(level) < min ? () => {} : (message: string, fields?: LogFields) => write(formatRecord(format, level, message, { ...base, ...fields }));
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}
