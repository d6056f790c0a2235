/**
 * The command line as users run it: exit codes, JSON that follows the schema, errors that say where,
 * and a malformed file that does not stop the others.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { main, type CliIo } from '../processor/src/cli/main.js';
import { decodeBufferLenient } from '../processor/src/decode/index.js';
import { scenarioSpans, tracesJson, tracesProto } from './run/otlp-fixtures.js';
import { schemaErrors, validateAnalyzeOutput } from './support/schemas.js';

const SCENARIOS = new URL('./fixtures/scenarios/', import.meta.url).pathname;
const ROOT = new URL('../', import.meta.url).pathname;

async function cli(...argv: string[]) {
  let stdout = '';
  let stderr = '';
  const io: CliIo = { stdout: (s) => void (stdout += s), stderr: (s) => void (stderr += s), isTTY: false, env: {} };
  const code = await main(argv, io);
  return { code, stdout, stderr };
}

function tmp(files: Record<string, string | Uint8Array>): string {
  const dir = mkdtempSync(join(tmpdir(), 'waitgraph-cli-'));
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  return dir;
}

describe('waitgraph analyze', () => {
  it('exits 1 and prints a report with the chain and Jaeger links for a deadlock', async () => {
    const r = await cli('analyze', SCENARIOS + '01-cross-service-ab-ba.json');
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('1 active deadlock');
    expect(r.stdout).toContain('DEADLOCK (active)');
    expect(r.stdout).toMatch(/waits for exclusive lock "orders-db\/orders\/42"; blocked by /);
    expect(r.stdout).toMatch(/http:\/\/localhost:16686\/trace\/[0-9a-f]{32}\?uiFind=[0-9a-f]{16}/);
  });

  it('exits 0 when nothing is found', async () => {
    const r = await cli('analyze', SCENARIOS + 'trap-running-holder.json');
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe('No deadlocks found.');
  });

  it('prints JSON that follows the schema, with the configured Jaeger base', async () => {
    const r = await cli('analyze', '--json', '--jaeger-url', 'https://jaeger.example.test/', SCENARIOS);
    expect(r.code).toBe(1);
    const out = JSON.parse(r.stdout);
    expect(validateAnalyzeOutput(out), schemaErrors(validateAnalyzeOutput)).toBe(true);
    const kinds = out.findings.map((f: { kind: string; state?: string }) => `${f.kind}/${f.state ?? ''}`);
    expect(kinds).toContain('deadlock/active');
    expect(kinds).toContain('deadlock/resolved');
    expect(kinds).toContain('potential-deadlock/');
    for (const f of out.findings) for (const l of f.links) expect(l.url).toBe(`https://jaeger.example.test/trace/${l.traceId}?uiFind=${l.spanId}`);
  });

  it('reports a malformed file with its line, still analyzes the others, and exits 2', async () => {
    const dir = tmp({ 'broken.json': '{"resourceSpans": [\n  {"scopeSpans": [}\n]}' });
    const r = await cli('analyze', '--json', join(dir, 'broken.json'), SCENARIOS + '01-cross-service-ab-ba.json');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/broken\.json:2:\d+: invalid JSON/);
    expect(JSON.parse(r.stdout).findings).toHaveLength(1);
  });

  it('names the byte offset of a truncated protobuf file', async () => {
    const dir = tmp({ 'cut.pb': new Uint8Array([0x0a, 0x50, 0x0a, 0x10, 1, 2, 3]) });
    const r = await cli('analyze', join(dir, 'cut.pb'));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/cut\.pb: byte \d+: truncated/);
  });

  it('finds in OTLP protobuf, one span a file, what it finds in the same spans as one JSON file', async () => {
    const files = readdirSync(SCENARIOS).filter((f) => f.endsWith('.json')).sort();
    let found = 0;
    for (const file of files) {
      const spans = scenarioSpans(file, 1_763_700_000_000);
      const json = tmp({ 'all.json': tracesJson(spans) });
      // Reversed: every span comes before its parent, each in a message of its own; a resource attribute
      // of 8 KiB makes each message large enough to be scanned and cut, not decoded whole.
      const big = (s: (typeof spans)[number]) => ({ ...s, resource: [...s.resource, { key: 'host.description', value: { stringValue: 'x'.repeat(8192) } }] });
      const pb = tmp(Object.fromEntries(spans.map((s, i) => [`${String(spans.length - i).padStart(3, '0')}.pb`, tracesProto([big(s)])])));
      const whole = await cli('analyze', '--json', json);
      const split = await cli('analyze', '--json', pb);
      expect(split.stderr).toBe('');
      expect([file, split.code]).toEqual([file, whole.code]);
      expect(JSON.parse(split.stdout)).toEqual(JSON.parse(whole.stdout));
      found += JSON.parse(whole.stdout).findings.length;
    }
    expect(found).toBeGreaterThan(files.length / 2);
  });

  it('skips a bad span of a protobuf file, naming it, and analyzes the rest of the file', async () => {
    const spans = scenarioSpans('01-cross-service-ab-ba.json', 1_763_700_000_000);
    const bad = { ...spans[0], span: { ...spans[0].span, spanId: 'beef' } };
    const bytes = tracesProto([bad, ...spans]);
    const { errors } = decodeBufferLenient(bytes, 'x');
    expect(errors).toHaveLength(1);
    const dir = tmp({ 'bad.pb': bytes });
    const r = await cli('analyze', '--json', join(dir, 'bad.pb'));
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`waitgraph analyze: ${errors[0].message.replace(/^x:/, join(dir, 'bad.pb') + ':')}\n`);
    expect(r.stderr).toMatch(/span_id is 2 bytes, expected 8/);
    expect(JSON.parse(r.stdout).findings).toHaveLength(1);
  });

  it('is a usage error (exit 2) without inputs, with an unknown option, or a missing file', async () => {
    expect((await cli('analyze')).code).toBe(2);
    const bad = await cli('analyze', '--frobnicate', SCENARIOS);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/frobnicate/);
    const missing = await cli('analyze', '/nonexistent/spans.json');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/\/nonexistent\/spans\.json: no such file or directory/);
    expect((await cli('analyze', '--jaeger-url', 'not a url', SCENARIOS)).code).toBe(2);
  });

  it('has --help and --version, and an unknown command is a usage error', async () => {
    const help = await cli('analyze', '--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Usage: waitgraph analyze/);
    expect((await cli('--help')).stdout).toMatch(/Exit codes/);
    expect((await cli('--version')).stdout).toMatch(/^waitgraph \d+\.\d+\.\d+/);
    expect((await cli('frob')).code).toBe(2);
  });

  it('runs as `npx waitgraph` from the repository root', async () => {
    const run = promisify(execFile);
    const err = await run('npx', ['waitgraph', 'analyze', '--json', SCENARIOS + '08-cert-wait-chain.json'], { cwd: ROOT }).catch((e) => e);
    expect(err.code).toBe(1);
    const out = JSON.parse(err.stdout);
    expect(out.findings[0].resources).toContain('config-lock');
  });
});
