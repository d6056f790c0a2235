/**
 * The options of `waitgraph run`: one table that says, for every option, its flag, its environment
 * variable, its type and its default. The command line, the environment (`WAITGRAPH_*`), a JSON config
 * file (`--config`) and the help text are all read from it, and the merged result is validated once, at
 * start, against the JSON Schema built from the same table: a bad option is a clear error before anything
 * listens or connects.
 *
 * Precedence, lowest first: the defaults, the config file, the environment, the command line.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { Type, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { WaitgraphError } from '../errors.js';
import { ROLES, type Role } from '../scale/role.js';
import { PAYLOAD_ENCODINGS, type PayloadEncoding } from '../io/index.js';
import { DEFAULT_MAX_SPANS } from './pipeline.js';

/** A duration: milliseconds, or a string with a unit: `250ms`, `10s`, `10m`, `1h`. */
export type Duration = number | string;

/** Levels of log lines, least severe first. */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
/** A log level. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Formats of log lines on stderr. */
export const LOG_FORMATS = ['json', 'logfmt'] as const;
/** A log format. */
export type LogFormat = (typeof LOG_FORMATS)[number];

/** What stdout shows of each alert. */
export const STDOUT_FORMATS = ['text', 'json', 'none'] as const;
/** What stdout shows of each alert. */
export type StdoutFormat = (typeof STDOUT_FORMATS)[number];

/** Options of `waitgraph run`. Every field is optional; the defaults are in the doc comments. */
export interface RunOptions {
  /** `all`: the single-instance processor; `decode`, `detect` or `both`: a scale-out instance (docs/architecture.md). Default `all`. */
  role?: Role;
  /** The wait-record topic between the scale-out stages. Default `waitgraph.waits`. */
  waitsTopic?: string;
  /** Interface of the OTLP/HTTP receiver, `/metrics` and `/healthz`. Default `127.0.0.1`. */
  host?: string;
  /** Port of the same; 0 picks a free one. Default 4318. */
  port?: number;
  /** Largest OTLP/HTTP body taken, in bytes, as sent and inflated. Default 16777216 (16 MiB). */
  maxBodyBytes?: number;
  /** Kafka bootstrap brokers, `host:port`. Default none: no Kafka, OTLP/HTTP only. */
  kafkaBrokers?: string[];
  /** The spans topic the Collector's kafka exporter writes. Default `otlp_spans`. */
  spansTopic?: string;
  /** The logs topic (log-based wait events). Default `otlp_logs`. */
  logsTopic?: string;
  /** Encoding of both topics. Default `otlp_proto`. */
  kafkaEncoding?: PayloadEncoding;
  /** Consumer group. Default `waitgraph`. */
  groupId?: string;
  /**
   * Kafka consumer session timeout: how long the group waits for a member that stopped answering (a killed
   * processor) before giving its partitions to another. Default `10s`.
   */
  kafkaSessionTimeout?: Duration;
  /** Alert topic. Default `waitgraph.alerts`. */
  alertTopic?: string;
  /** Dead-letter topic for malformed messages; empty to only count and log them. Default `waitgraph.deadletter`. */
  deadLetterTopic?: string;
  /** How far back the spans topic is replayed at start to rebuild the graph. Default `10m`. */
  replayWindow?: Duration;
  /** JSON-lines alert file (also the record of open deadlocks without Kafka); empty for none. Default `./waitgraph-alerts.jsonl`. */
  alertFile?: string;
  /** Alerts on stdout: readable text, JSON lines, or none. Default `text`. */
  stdout?: StdoutFormat;
  /** Base URL of the Jaeger UI, for the links in alerts. Default `http://localhost:16686`. */
  jaegerUrl?: string;
  /** Services whose spans are proxy hops (sidecars). Default none. */
  proxyServices?: string[];
  /** Most victims listed in a finding (all are counted). Default 100. */
  maxVictims?: number;
  /** How often stale spans are expired and detection runs, besides after every batch. Default `250ms`. */
  detectInterval?: Duration;
  /** A wait or hold whose span has had no fresh snapshot for this long is not trusted. Default `10s`. */
  staleAfter?: Duration;
  /**
   * How much history the live graph keeps: spans that ended (or went stale) longer ago are forgotten,
   * unless a hold or retry still rests on them. Deadlocks that timeouts broke are found within it. At
   * least `staleAfter`. Default `10m` (the replay window's default, so a restart rebuilds the same graph).
   */
  history?: Duration;
  /**
   * Most spans the live graph holds: past it, the oldest ended ones are forgotten before `history` is up
   * (`waitgraph_history_seconds` shows the history in effect). Default `DEFAULT_MAX_SPANS`, 500000 (why:
   * pipeline.ts; memory: docs/processor.md, History).
   */
  maxSpans?: number;
  /** How often a stats line is logged; 0 for never. Default `10s`. */
  statsInterval?: Duration;
  /** Longest a graceful shutdown may take before the process exits anyway. Default `10s`. */
  shutdownTimeout?: Duration;
  /** Least severe log level written to stderr. Default `info`. */
  logLevel?: LogLevel;
  /** Log lines as JSON objects or logfmt. Default `json`. */
  logFormat?: LogFormat;
  /** This processor's name in alerts, logs and the Kafka client id. Default the host name. */
  instanceId?: string;
}

/** The options with every default filled in and durations in milliseconds. */
export interface ResolvedRunOptions {
  role: Role;
  waitsTopic: string;
  host: string;
  port: number;
  maxBodyBytes: number;
  kafkaBrokers: string[];
  spansTopic: string;
  logsTopic: string;
  kafkaEncoding: PayloadEncoding;
  groupId: string;
  kafkaSessionTimeoutMs: number;
  alertTopic: string;
  /** null: none. */
  deadLetterTopic: string | null;
  replayWindowMs: number;
  /** null: none. */
  alertFile: string | null;
  stdout: StdoutFormat;
  jaegerUrl: string;
  proxyServices: string[];
  maxVictims: number;
  detectIntervalMs: number;
  staleAfterMs: number;
  historyMs: number;
  maxSpans: number;
  statsIntervalMs: number;
  shutdownTimeoutMs: number;
  logLevel: LogLevel;
  logFormat: LogFormat;
  instanceId: string;
}

type Kind = 'string' | 'int' | 'duration' | 'list' | 'enum';

/** One row of the option table. */
export interface OptionSpec {
  key: keyof RunOptions;
  /** The flag, without `--`; the environment variable is `WAITGRAPH_` and the flag in upper snake case. */
  flag: string;
  kind: Kind;
  /** For `enum`. */
  values?: readonly string[];
  /** For `int` and `duration` (ms): the least value. */
  min?: number;
  /** For `int`: the greatest value. */
  max?: number;
  /** The flag's argument in the help text. */
  arg: string;
  /** The default as the help text shows it. */
  shown: string;
  help: string;
}

/** The environment variable of an option: `--kafka-brokers` is `WAITGRAPH_KAFKA_BROKERS`. */
export function envName(spec: Pick<OptionSpec, 'flag'>): string {
  return `WAITGRAPH_${spec.flag.toUpperCase().replace(/-/g, '_')}`;
}

/** Every option of `waitgraph run`, in the order the help lists them. */
export const OPTION_SPECS: readonly OptionSpec[] = [
  { key: 'role', flag: 'role', kind: 'enum', values: ROLES, arg: '<role>', shown: 'all', help: 'all: one processor; decode, detect or both: a scale-out instance' },
  { key: 'waitsTopic', flag: 'waits-topic', kind: 'string', arg: '<topic>', shown: 'waitgraph.waits', help: 'wait-record topic between the scale-out stages' },
  { key: 'host', flag: 'host', kind: 'string', arg: '<addr>', shown: '127.0.0.1', help: 'interface of the OTLP/HTTP receiver, /metrics, /healthz' },
  { key: 'port', flag: 'port', kind: 'int', min: 0, max: 65535, arg: '<n>', shown: '4318', help: 'its port (0: any free port)' },
  { key: 'maxBodyBytes', flag: 'max-body-bytes', kind: 'int', min: 1, arg: '<n>', shown: '16777216', help: 'largest OTLP/HTTP body, as sent and inflated' },
  { key: 'kafkaBrokers', flag: 'kafka-brokers', kind: 'list', arg: '<h:p,...>', shown: 'none', help: 'read spans from Kafka and publish alerts there' },
  { key: 'spansTopic', flag: 'spans-topic', kind: 'string', arg: '<topic>', shown: 'otlp_spans', help: 'spans topic the Collector writes' },
  { key: 'logsTopic', flag: 'logs-topic', kind: 'string', arg: '<topic>', shown: 'otlp_logs', help: 'logs topic (log-based wait events)' },
  { key: 'kafkaEncoding', flag: 'kafka-encoding', kind: 'enum', values: PAYLOAD_ENCODINGS, arg: '<enc>', shown: 'otlp_proto', help: 'encoding of both topics: otlp_proto or otlp_json' },
  { key: 'groupId', flag: 'group-id', kind: 'string', arg: '<id>', shown: 'waitgraph', help: 'consumer group' },
  { key: 'kafkaSessionTimeout', flag: 'kafka-session-timeout', kind: 'duration', min: 1000, arg: '<dur>', shown: '10s', help: 'time before the group reassigns a dead member' },
  { key: 'alertTopic', flag: 'alert-topic', kind: 'string', arg: '<topic>', shown: 'waitgraph.alerts', help: 'alert topic (created compacted if missing)' },
  { key: 'deadLetterTopic', flag: 'dead-letter-topic', kind: 'string', arg: '<topic>', shown: 'waitgraph.deadletter', help: "malformed messages go here ('' for none)" },
  { key: 'replayWindow', flag: 'replay-window', kind: 'duration', min: 0, arg: '<dur>', shown: '10m', help: 'spans replayed at start to rebuild the graph' },
  { key: 'alertFile', flag: 'alert-file', kind: 'string', arg: '<path>', shown: './waitgraph-alerts.jsonl', help: "JSON-lines alert file ('' for none)" },
  { key: 'stdout', flag: 'stdout', kind: 'enum', values: STDOUT_FORMATS, arg: '<fmt>', shown: 'text', help: 'alerts on stdout: text, json (lines) or none' },
  { key: 'jaegerUrl', flag: 'jaeger-url', kind: 'string', arg: '<url>', shown: 'http://localhost:16686', help: 'base URL of the Jaeger UI for links' },
  { key: 'proxyServices', flag: 'proxy-service', kind: 'list', arg: '<name>', shown: 'none', help: "treat this service's spans as proxy hops (repeatable)" },
  { key: 'maxVictims', flag: 'max-victims', kind: 'int', min: 0, arg: '<n>', shown: '100', help: 'victims listed per finding; all are counted' },
  { key: 'detectInterval', flag: 'detect-interval', kind: 'duration', min: 10, arg: '<dur>', shown: '250ms', help: 'expire stale spans and detect this often' },
  { key: 'staleAfter', flag: 'stale-after', kind: 'duration', min: 100, arg: '<dur>', shown: '10s', help: 'distrust a span with no fresh snapshot for this long' },
  { key: 'history', flag: 'history', kind: 'duration', min: 100, arg: '<dur>', shown: '10m', help: 'forget spans that ended longer ago than this' },
  { key: 'maxSpans', flag: 'max-spans', kind: 'int', min: 1000, arg: '<n>', shown: String(DEFAULT_MAX_SPANS), help: 'most spans kept; past it the history gets shorter' },
  { key: 'statsInterval', flag: 'stats-interval', kind: 'duration', min: 0, arg: '<dur>', shown: '10s', help: 'log a stats line this often (0: never)' },
  { key: 'shutdownTimeout', flag: 'shutdown-timeout', kind: 'duration', min: 0, arg: '<dur>', shown: '10s', help: 'deadline of a graceful shutdown' },
  { key: 'logLevel', flag: 'log-level', kind: 'enum', values: LOG_LEVELS, arg: '<level>', shown: 'info', help: 'debug, info, warn or error' },
  { key: 'logFormat', flag: 'log-format', kind: 'enum', values: LOG_FORMATS, arg: '<fmt>', shown: 'json', help: 'stderr log lines: json or logfmt' },
  { key: 'instanceId', flag: 'instance-id', kind: 'string', arg: '<name>', shown: 'host name', help: 'name of this processor in alerts and logs' },
];

const DEFAULTS: Omit<ResolvedRunOptions, 'instanceId'> = {
  role: 'all',
  waitsTopic: 'waitgraph.waits',
  host: '127.0.0.1',
  port: 4318,
  maxBodyBytes: 16 * 1024 * 1024,
  kafkaBrokers: [],
  spansTopic: 'otlp_spans',
  logsTopic: 'otlp_logs',
  kafkaEncoding: 'otlp_proto',
  groupId: 'waitgraph',
  kafkaSessionTimeoutMs: 10_000,
  alertTopic: 'waitgraph.alerts',
  deadLetterTopic: 'waitgraph.deadletter',
  replayWindowMs: 10 * 60_000,
  alertFile: './waitgraph-alerts.jsonl',
  stdout: 'text',
  jaegerUrl: 'http://localhost:16686',
  proxyServices: [],
  maxVictims: 100,
  detectIntervalMs: 250,
  staleAfterMs: 10_000,
  historyMs: 10 * 60_000,
  maxSpans: DEFAULT_MAX_SPANS,
  statsIntervalMs: 10_000,
  shutdownTimeoutMs: 10_000,
  logLevel: 'info',
  logFormat: 'json',
};

const DURATION_PATTERN = '^\\s*\\d+(\\.\\d+)?\\s*(ms|s|m|h)?\\s*$';

function schemaOf(spec: OptionSpec): TSchema {
  const description = `${spec.help} (default ${spec.shown}; --${spec.flag}, $${envName(spec)})`;
  switch (spec.kind) {
    case 'string':
      return Type.String({ description });
    case 'int':
      return Type.Integer({ description, minimum: spec.min, maximum: spec.max });
    case 'duration':
      return Type.Union([Type.Number({ minimum: spec.min ?? 0 }), Type.String({ pattern: DURATION_PATTERN })], {
        description: `${description}; ms, or a string with a unit: 250ms, 10s, 10m, 1h`,
      });
    case 'list':
      return Type.Array(Type.String({ minLength: 1 }), { description });
    case 'enum':
      return Type.Union(spec.values!.map((v) => Type.Literal(v)), { description });
  }
}

/** The JSON Schema of `RunOptions`: what a `--config` file holds. */
export const RunOptionsSchema = Type.Object(
  Object.fromEntries(OPTION_SPECS.map((s) => [s.key, Type.Optional(schemaOf(s))])),
  { $id: 'https://waitgraph.dev/schemas/run-options.schema.json', title: 'waitgraph run options', additionalProperties: false },
);

/** Milliseconds of a duration; throws a `bad-config` error naming `what` if it is not one. */
export function parseDuration(value: Duration, what: string): number {
  if (typeof value === 'number') {
    if (Number.isFinite(value) && value >= 0) return value;
  } else {
    const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(value);
    if (m) return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 'ms') as 'ms'];
  }
  throw new WaitgraphError('bad-config', `${what}: not a duration: ${JSON.stringify(value)} (use ms, or 250ms, 10s, 10m, 1h)`);
}

/** The value of one option as text (a flag or an environment variable), typed as the table says. */
function fromText(spec: OptionSpec, text: string | string[], where: string): unknown {
  const what = where;
  switch (spec.kind) {
    case 'string':
    case 'enum':
      return Array.isArray(text) ? text[text.length - 1] : text;
    case 'list':
      return (Array.isArray(text) ? text : [text])
        .flatMap((t) => t.split(','))
        .map((t) => t.trim())
        .filter((t) => t.length > 0);
    case 'int': {
      const t = (Array.isArray(text) ? text[text.length - 1]! : text).trim();
      if (!/^-?\d+$/.test(t)) throw new WaitgraphError('bad-config', `${what}: not a whole number: ${JSON.stringify(t)}`);
      return Number(t);
    }
    case 'duration': {
      const t = Array.isArray(text) ? text[text.length - 1]! : text;
      return /^\s*\d+(\.\d+)?\s*$/.test(t) ? Number(t) : t;
    }
  }
}

/** The options a config file holds; throws a `bad-config` error for an unreadable or malformed file. */
export function readConfigFile(path: string): RunOptions {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new WaitgraphError('bad-config', `--config ${path}: ${(err as Error).message}`, { cause: err });
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new WaitgraphError('bad-config', `--config ${path}: must hold a JSON object of options`);
  }
  check(doc, `--config ${path}`);
  return doc as RunOptions;
}

/** The options set by `WAITGRAPH_*` environment variables. */
export function optionsFromEnv(env: NodeJS.ProcessEnv): RunOptions {
  const out: Record<string, unknown> = {};
  for (const spec of OPTION_SPECS) {
    const text = env[envName(spec)];
    if (text !== undefined) out[spec.key] = fromText(spec, text, `$${envName(spec)}`);
  }
  return out as RunOptions;
}

/** The `parseArgs` option config of every option. */
export function parseArgsOptions(): Record<string, { type: 'string'; multiple?: boolean }> {
  return Object.fromEntries(OPTION_SPECS.map((s) => [s.flag, { type: 'string' as const, ...(s.kind === 'list' ? { multiple: true } : {}) }]));
}

/** The options given as flags, from `parseArgs` values. */
export function optionsFromFlags(values: Record<string, unknown>): RunOptions {
  const out: Record<string, unknown> = {};
  for (const spec of OPTION_SPECS) {
    const v = values[spec.flag];
    if (v !== undefined) out[spec.key] = fromText(spec, v as string | string[], `--${spec.flag}`);
  }
  return out as RunOptions;
}

function wanted(spec: OptionSpec): string {
  switch (spec.kind) {
    case 'string':
      return 'a string';
    case 'int':
      return `a whole number${spec.min !== undefined ? ` >= ${spec.min}` : ''}${spec.max !== undefined ? ` and <= ${spec.max}` : ''}`;
    case 'duration':
      return `a duration of at least ${spec.min ?? 0} ms (ms, or a string such as 250ms, 10s, 10m, 1h)`;
    case 'list':
      return 'a list of names';
    case 'enum':
      return `one of ${spec.values!.join(', ')}`;
  }
}

function check(options: unknown, where: string): void {
  const first = Value.Errors(RunOptionsSchema, options).First();
  if (!first) return;
  const key = first.path.split('/')[1] ?? '';
  const spec = OPTION_SPECS.find((s) => s.key === key);
  if (!spec) throw new WaitgraphError('bad-config', `${where}: unknown option ${JSON.stringify(key)} (the options are ${OPTION_SPECS.map((s) => s.key).join(', ')})`);
  const value = (options as Record<string, unknown>)[key];
  throw new WaitgraphError('bad-config', `${where}: ${key} (--${spec.flag}, $${envName(spec)}) must be ${wanted(spec)}, got ${JSON.stringify(value)}`);
}

/**
 * Merges option layers (lowest precedence first) over the defaults, validates the result and resolves
 * durations. Throws a `bad-config` WaitgraphError that names the option at fault.
 */
export function resolveRunOptions(...layers: RunOptions[]): ResolvedRunOptions {
  const merged: RunOptions = Object.assign({}, ...layers);
  check(merged, 'options');
  const ms = (key: 'replayWindow' | 'detectInterval' | 'staleAfter' | 'history' | 'statsInterval' | 'shutdownTimeout' | 'kafkaSessionTimeout', fallback: number) => {
    const v = merged[key];
    if (v === undefined) return fallback;
    const spec = OPTION_SPECS.find((s) => s.key === key)!;
    const n = parseDuration(v, `${key} (--${spec.flag})`);
    if (n < (spec.min ?? 0)) throw new WaitgraphError('bad-config', `${key} (--${spec.flag}): at least ${spec.min} ms, got ${JSON.stringify(v)}`);
    return n;
  };
  const jaegerUrl = merged.jaegerUrl ?? DEFAULTS.jaegerUrl;
  if (!/^https?:\/\/\S+$/.test(jaegerUrl)) throw new WaitgraphError('bad-config', `jaegerUrl (--jaeger-url): must be an http(s) URL, got ${JSON.stringify(jaegerUrl)}`);
  for (const b of merged.kafkaBrokers ?? []) {
    if (!/^[^\s:]+:\d{1,5}$/.test(b)) throw new WaitgraphError('bad-config', `kafkaBrokers (--kafka-brokers): want host:port, got ${JSON.stringify(b)}`);
  }
  for (const key of ['spansTopic', 'logsTopic', 'alertTopic', 'groupId', 'host', 'waitsTopic'] as const) {
    if (merged[key] === '') throw new WaitgraphError('bad-config', `${key}: must not be empty`);
  }
  const staleAfterMs = ms('staleAfter', DEFAULTS.staleAfterMs);
  const detectIntervalMs = ms('detectInterval', DEFAULTS.detectIntervalMs);
  if (detectIntervalMs >= staleAfterMs) {
    throw new WaitgraphError('bad-config', `detectInterval (${detectIntervalMs} ms) must be shorter than staleAfter (${staleAfterMs} ms)`);
  }
  const historyMs = ms('history', DEFAULTS.historyMs);
  if (historyMs < staleAfterMs) {
    throw new WaitgraphError('bad-config', `history (${historyMs} ms) must be at least staleAfter (${staleAfterMs} ms)`);
  }
  return {
    role: merged.role ?? DEFAULTS.role,
    waitsTopic: merged.waitsTopic ?? DEFAULTS.waitsTopic,
    host: merged.host ?? DEFAULTS.host,
    port: merged.port ?? DEFAULTS.port,
    maxBodyBytes: merged.maxBodyBytes ?? DEFAULTS.maxBodyBytes,
    kafkaBrokers: merged.kafkaBrokers ?? DEFAULTS.kafkaBrokers,
    spansTopic: merged.spansTopic ?? DEFAULTS.spansTopic,
    logsTopic: merged.logsTopic ?? DEFAULTS.logsTopic,
    kafkaEncoding: merged.kafkaEncoding ?? DEFAULTS.kafkaEncoding,
    groupId: merged.groupId ?? DEFAULTS.groupId,
    kafkaSessionTimeoutMs: ms('kafkaSessionTimeout', DEFAULTS.kafkaSessionTimeoutMs),
    alertTopic: merged.alertTopic ?? DEFAULTS.alertTopic,
    deadLetterTopic: merged.deadLetterTopic === '' ? null : (merged.deadLetterTopic ?? DEFAULTS.deadLetterTopic),
    replayWindowMs: ms('replayWindow', DEFAULTS.replayWindowMs),
    alertFile: merged.alertFile === '' ? null : (merged.alertFile ?? DEFAULTS.alertFile),
    stdout: merged.stdout ?? DEFAULTS.stdout,
    jaegerUrl,
    proxyServices: merged.proxyServices ?? DEFAULTS.proxyServices,
    maxVictims: merged.maxVictims ?? DEFAULTS.maxVictims,
    detectIntervalMs,
    staleAfterMs,
    historyMs,
    maxSpans: merged.maxSpans ?? DEFAULTS.maxSpans,
    statsIntervalMs: ms('statsInterval', DEFAULTS.statsIntervalMs),
    shutdownTimeoutMs: ms('shutdownTimeout', DEFAULTS.shutdownTimeoutMs),
    logLevel: merged.logLevel ?? DEFAULTS.logLevel,
    logFormat: merged.logFormat ?? DEFAULTS.logFormat,
    instanceId: merged.instanceId || hostname() || 'waitgraph',
  };
}

/** The help text's option lines, from the table. */
export function optionHelp(): string {
  const rows = OPTION_SPECS.map((s) => [`  --${s.flag} ${s.arg}`, `${s.help} [${s.shown}]`]);
  const width = Math.max(...rows.map((r) => r[0]!.length)) + 2;
  return rows.map(([a, b]) => a!.padEnd(width) + b).join('\n');
}
