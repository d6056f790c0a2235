/**
 * The options of `waitgraph run`: defaults, the three places they come from and which wins, and the
 * errors a user sees for a bad one (at start, naming the option), through the command itself.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main, type CliIo } from '../../processor/src/cli/main.js';
import { createLogger } from '../../processor/src/run/logger.js';
import { OPTION_SPECS, optionsFromEnv, optionsFromFlags, readConfigFile, resolveRunOptions, envName } from '../../processor/src/run/options.js';

function io(env: NodeJS.ProcessEnv = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const cli: CliIo = { stdout: (s) => void out.push(s), stderr: (s) => void err.push(s), isTTY: false, env };
  return { cli, out: () => out.join(''), err: () => err.join('') };
}

function configFile(content: unknown): string {
  const file = join(mkdtempSync(join(tmpdir(), 'waitgraph-config-')), 'config.json');
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

describe('waitgraph run options', () => {
  it('has the documented defaults: OTLP/HTTP on 127.0.0.1:4318, no Kafka, stdout and ./waitgraph-alerts.jsonl', () => {
    const o = resolveRunOptions();
    expect(o).toMatchObject({
      host: '127.0.0.1',
      port: 4318,
      kafkaBrokers: [],
      spansTopic: 'otlp_spans',
      logsTopic: 'otlp_logs',
      kafkaEncoding: 'otlp_proto',
      groupId: 'waitgraph',
      alertTopic: 'waitgraph.alerts',
      deadLetterTopic: 'waitgraph.deadletter',
      replayWindowMs: 600_000,
      alertFile: './waitgraph-alerts.jsonl',
      stdout: 'text',
      jaegerUrl: 'http://localhost:16686',
      detectIntervalMs: 250,
      staleAfterMs: 10_000,
      historyMs: 600_000,
      maxSpans: 500_000,
      kafkaSessionTimeoutMs: 10_000,
      logLevel: 'info',
      logFormat: 'json',
    });
    expect(o.instanceId.length).toBeGreaterThan(0);
  });

  it('takes a config file, then WAITGRAPH_* variables, then flags, each over the one before', () => {
    const file = configFile({ port: 1111, staleAfter: '30s', kafkaBrokers: ['file:9092'], jaegerUrl: 'http://file:16686' });
    const env = { WAITGRAPH_PORT: '2222', WAITGRAPH_KAFKA_BROKERS: 'env-a:9092, env-b:9092', WAITGRAPH_REPLAY_WINDOW: '2m' };
    const flags = optionsFromFlags({ port: '3333', 'proxy-service': ['envoy', 'istio-proxy'] });
    const o = resolveRunOptions(readConfigFile(file), optionsFromEnv(env), flags);
    expect(o).toMatchObject({
      port: 3333,
      kafkaBrokers: ['env-a:9092', 'env-b:9092'],
      staleAfterMs: 30_000,
      replayWindowMs: 120_000,
      jaegerUrl: 'http://file:16686',
      proxyServices: ['envoy', 'istio-proxy'],
    });
    // Every option has its variable, named after its flag.
    expect(OPTION_SPECS.map(envName)).toContain('WAITGRAPH_KAFKA_SESSION_TIMEOUT');
    expect(new Set(OPTION_SPECS.map(envName)).size).toBe(OPTION_SPECS.length);
  });

  it('refuses a bad option at start with exit code 2 and a message naming it', async () => {
    const cases: [string[], NodeJS.ProcessEnv, RegExp][] = [
      [['--port', '70000'], {}, /port \(--port, \$WAITGRAPH_PORT\) must be a whole number >= 0 and <= 65535, got 70000/],
      [['--stale-after', 'soon'], {}, /staleAfter \(--stale-after, \$WAITGRAPH_STALE_AFTER\) must be a duration/],
      [[], { WAITGRAPH_LOG_LEVEL: 'loud' }, /logLevel .* must be one of debug, info, warn, error, got "loud"/],
      [['--kafka-brokers', 'localhost'], {}, /kafkaBrokers \(--kafka-brokers\): want host:port, got "localhost"/],
      [['--jaeger-url', 'jaeger:16686'], {}, /must be an http\(s\) URL/],
      [['--detect-interval', '20s'], {}, /detectInterval \(20000 ms\) must be shorter than staleAfter \(10000 ms\)/],
      [['--history', '5s'], {}, /history \(5000 ms\) must be at least staleAfter \(10000 ms\)/],
      [['--config', configFile({ stalAfter: '5s' })], {}, /unknown option "stalAfter"/],
      [['--config', configFile('{"port": ')], {}, /--config .*config\.json: .*JSON/],
      [['--no-such-flag'], {}, /Unknown option '--no-such-flag'/],
    ];
    for (const [argv, env, message] of cases) {
      const t = io(env);
      expect(await main(['run', ...argv], t.cli), argv.join(' ')).toBe(2);
      expect(t.err(), argv.join(' ')).toMatch(message);
    }
  });

  it('shows its options, defaults and environment variables in --help', async () => {
    const t = io();
    expect(await main(['run', '--help'], t.cli)).toBe(0);
    for (const spec of OPTION_SPECS) expect(t.out()).toContain(`--${spec.flag} `);
    expect(t.out()).toContain('--demo');
    expect(t.out()).toContain('[4318]');
    const top = io();
    await main(['--help'], top.cli);
    expect(top.out()).toContain('waitgraph run [options]');
  });

  it('are all documented in docs/processor.md, with the defaults the help shows', () => {
    const doc = readFileSync(new URL('../../docs/processor.md', import.meta.url), 'utf8');
    for (const spec of OPTION_SPECS) {
      const row = doc.split('\n').find((l) => l.startsWith('| ') && l.includes(`\`--${spec.flag}\``));
      expect(row, `--${spec.flag}`).toBeDefined();
      const defaultCell = row!.split('|')[2]!;
      expect(defaultCell, `--${spec.flag}`).toContain(spec.shown === 'host name' ? 'the host name' : spec.shown);
    }
  });

  it('logs JSON objects or logfmt lines, from the chosen level up', () => {
    const lines: string[] = [];
    const json = createLogger({ level: 'warn', write: (l) => void lines.push(l) });
    json.info('hidden');
    json.warn('shown', { partition: 'otlp_spans/0' });
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'warn', message: 'shown', partition: 'otlp_spans/0' });
    const logfmt = createLogger({ level: 'debug', format: 'logfmt', write: (l) => void lines.push(l) });
    logfmt.debug('two words', { n: 3, path: 'a b' });
    expect(lines[1]).toMatch(/^time=\S+ level=debug msg="two words" n=3 path="a b"$/);
    // A field named as one of the record's own keys does not overwrite it.
    json.warn('the line', { message: 'a field', level: 'x', time: 't' });
    expect(JSON.parse(lines[2]!)).toMatchObject({ level: 'warn', message: 'the line', 'field.message': 'a field', 'field.level': 'x', 'field.time': 't' });
    logfmt.info('the line', { msg: 'a field' });
    expect(lines[3]).toMatch(/^time=\S+ level=info msg="the line" field\.msg="a field"$/);
  });
});
