#!/usr/bin/env node
// `npm test`: the whole suite, as CI runs it.
//
// 1. Installs and builds the real servers the integration tests use (Kafka from Maven Central, the
//    OpenTelemetry Collector and Jaeger from the Go module proxy, PostgreSQL from Debian), in the
//    background and cached outside the repository, while 2. and 3. run.
// 2. Type-checks everything, in strict mode.
// 3. Checks the generated files (JSON Schemas, scenario fixtures) match their sources.
// 4. Runs vitest: unit, scenario, property and integration tests. The integration tests start the servers
//    they need on 127.0.0.1 and the run stops them all at the end.
//
// Arguments are passed to vitest (`npm test -- test/engine` runs one folder).
import { spawn } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const vitestArgs = process.argv.slice(2);
const onlySome = vitestArgs.some((a) => !a.startsWith('-'));

function run(cmd, args, { quiet = false } = {}) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const child = spawn(cmd, args, { cwd: root, stdio: quiet ? ['ignore', 'pipe', 'pipe'] : 'inherit', env: process.env });
    let out = '';
    if (quiet) {
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
    }
    child.on('close', (code) => resolve({ code: code ?? 1, out, seconds: ((Date.now() - t0) / 1000).toFixed(1) }));
  });
}

const prepare = onlySome
  ? []
  : [
      ['kafka', 'scripts/kafka.sh', ['install']],
      ['postgres', 'scripts/postgres.sh', ['install']],
      ['otelcol', 'scripts/otelcol.sh', ['build']],
      ['jaeger', 'scripts/jaeger.sh', ['build']],
    ].map(([name, script, args]) =>
      run('bash', [script, ...args], { quiet: true }).then((r) => {
        console.log(`[test] ${name}: ${r.code === 0 ? 'ready' : 'FAILED'} (${r.seconds} s)`);
        if (r.code !== 0) console.log(r.out.split('\n').slice(-30).join('\n'));
        return r.code;
      }),
    );

let failed = false;
const tsc = await run('npx', ['tsc', '-p', 'tsconfig.json', '--noEmit']);
console.log(`[test] typecheck: ${tsc.code === 0 ? 'ok' : 'FAILED'} (${tsc.seconds} s)`);
failed ||= tsc.code !== 0;
for (const gen of [['schemas/generate.ts'], ['scripts/gen-fixtures.ts']]) {
  const r = await run('npx', ['tsx', ...gen, '--check']);
  console.log(`[test] ${gen[0]} --check: ${r.code === 0 ? 'ok' : 'FAILED'}`);
  failed ||= r.code !== 0;
}
if ((await Promise.all(prepare)).some((c) => c !== 0)) failed = true;
const vitest = await run('npx', ['vitest', 'run', ...vitestArgs]);
failed ||= vitest.code !== 0;
process.exit(failed ? 1 : 0);
