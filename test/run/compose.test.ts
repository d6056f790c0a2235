/**
 * docker-compose.yml and its configs in deploy/compose/, checked without Docker: the files parse, every
 * mounted file exists, and the pieces are wired to each other (the Collector writes the topics and
 * encoding the processor reads, on the broker the processor connects to; the Collector exports to Jaeger's
 * OTLP port; the alert links point at Jaeger's published UI; ports are published on loopback only). The
 * processor's command line is parsed with waitgraph's own option parser, and the Collector's config is
 * validated by a real Collector of the same version with the same components.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { optionsFromEnv, optionsFromFlags, parseArgsOptions, resolveRunOptions, type ResolvedRunOptions } from '../../processor/src/run/options.js';
import { SERVER_START_TIMEOUT_MS } from '../support/servers.js';
import { ROOT } from './processes.js';

const run = promisify(execFile);

interface Service {
  image: string;
  command?: string | string[];
  entrypoint?: string[];
  environment?: Record<string, string | number>;
  volumes?: string[];
  ports?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
}
type Yaml = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

let compose: { services: Record<string, Service>; volumes?: Record<string, unknown> };
/** Host file of a bind mount of a service, by its path in the container. */
const mounted = (service: Service, target: string): string => {
  const v = (service.volumes ?? []).find((x) => x.split(':')[1] === target);
  if (!v) throw new Error(`nothing mounted at ${target}`);
  return join(ROOT, v.split(':')[0]!);
};
const readYaml = (file: string): Yaml => parse(readFileSync(file, 'utf8')) as Yaml;
const configArg = (s: Service) => [s.command ?? []].flat().find((a) => a.startsWith('--config='))!.slice('--config='.length);
const hostPort = (endpoint: string) => {
  const i = endpoint.lastIndexOf(':');
  return { host: endpoint.slice(0, i), port: Number(endpoint.slice(i + 1)) };
};

/** The processor's options as its container would resolve them: flags of its command, then its environment. */
function processorOptions(s: Service): ResolvedRunOptions {
  const line = [s.command].flat().join(' ');
  const m = /npx waitgraph run (.*)$/.exec(line);
  if (!m) throw new Error(`the processor does not run 'npx waitgraph run': ${line}`);
  const args = parseArgs({ args: m[1]!.trim().split(/\s+/), options: parseArgsOptions(), strict: true, allowPositionals: false });
  const env = Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, String(v)]));
  return resolveRunOptions(optionsFromEnv(env), optionsFromFlags(args.values));
}

describe('docker-compose.yml', () => {
  beforeAll(() => {
    compose = readYaml(join(ROOT, 'docker-compose.yml')) as typeof compose;
  });

  it('has Kafka in KRaft mode, the contrib Collector, Jaeger v2 and the processor on Node.js 22', () => {
    const { kafka, collector, jaeger, waitgraph } = compose.services;
    expect(kafka?.image).toMatch(/^apache\/kafka:4\./);
    expect(String(kafka?.environment?.KAFKA_PROCESS_ROLES).split(',').sort()).toEqual(['broker', 'controller']);
    expect(collector?.image).toMatch(/^otel\/opentelemetry-collector-contrib:\d/);
    expect(jaeger?.image).toMatch(/^jaegertracing\/jaeger:2\./);
    expect(waitgraph?.image).toBe('node:22');
    for (const [name, s] of Object.entries(compose.services)) {
      for (const dep of Object.keys(s.depends_on ?? {})) expect(compose.services, `${name} depends on ${dep}`).toHaveProperty(dep);
      for (const v of s.volumes ?? []) {
        const source = v.split(':')[0]!;
        if (source.startsWith('.')) expect(existsSync(join(ROOT, source)), `${name} mounts ${source}`).toBe(true);
        else expect(compose.volumes, `${name} uses volume ${source}`).toHaveProperty(source);
      }
      for (const p of s.ports ?? []) expect(p, `${name} publishes ${p}`).toMatch(/^127\.0\.0\.1:\d+:\d+$/);
    }
  });

  it('wires the Collector to the broker, topics and encoding the processor reads, and to Jaeger', () => {
    const { kafka, collector, jaeger, waitgraph } = compose.services as Record<string, Service>;
    const otelcol = readYaml(mounted(collector!, configArg(collector!)));
    const processor = processorOptions(waitgraph!);

    // The address the broker gives containers is the one both clients use.
    const advertised = String(kafka!.environment!.KAFKA_ADVERTISED_LISTENERS).split(',').map((l) => l.split('://')[1]);
    const exporter = otelcol.exporters.kafka;
    expect(advertised).toContain(exporter.brokers[0]);
    expect(processor.kafkaBrokers).toEqual(exporter.brokers);
    expect(exporter.traces).toEqual({ topic: processor.spansTopic, encoding: processor.kafkaEncoding });
    expect(exporter.logs).toEqual({ topic: processor.logsTopic, encoding: processor.kafkaEncoding });
    expect(exporter.partition_traces_by_id).toBe(true);
    expect(processor.spansTopic).toBe('otlp_spans');

    // Every pipeline uses defined components; spans go to Kafka and to Jaeger's OTLP receiver.
    const pipelines = otelcol.service.pipelines;
    for (const p of Object.values(pipelines) as Yaml[]) {
      for (const r of p.receivers) expect(otelcol.receivers).toHaveProperty([r]);
      for (const x of p.processors ?? []) expect(otelcol.processors).toHaveProperty([x]);
      for (const e of p.exporters) expect(otelcol.exporters).toHaveProperty([e]);
    }
    expect(pipelines.traces.exporters).toContain('kafka');
    expect(pipelines.logs.exporters).toContain('kafka');
    // Spans reach Jaeger through a traces pipeline of their own that drops partial-span snapshots.
    const [jaegerPipeline] = Object.entries(pipelines as Record<string, Yaml>).filter(
      ([name, p]) => name.split('/')[0] === 'traces' && p.exporters.some((e: string) => e.startsWith('otlp')),
    );
    expect(jaegerPipeline, 'a traces pipeline to Jaeger').toBeDefined();
    const filters = (jaegerPipeline![1].processors ?? []).filter((x: string) => x.split('/')[0] === 'filter');
    expect(filters.map((f: string) => JSON.stringify(otelcol.processors[f])).join()).toContain('span.partial');
    expect(jaegerPipeline![1].exporters).not.toContain('kafka');
    const toJaeger = jaegerPipeline![1].exporters.find((e: string) => e.startsWith('otlp'));
    const target = hostPort(otelcol.exporters[toJaeger].endpoint);
    expect(target.host).toBe('jaeger');
    const jaegerConfig = readYaml(mounted(jaeger!, configArg(jaeger!)));
    expect(hostPort(jaegerConfig.receivers.otlp.protocols.grpc.endpoint).port).toBe(target.port);
    // Applications reach the Collector's OTLP ports from the host.
    const published = (s: Service) => (s.ports ?? []).map((p) => p.split(':').slice(1).map(Number) as [number, number]);
    for (const proto of ['grpc', 'http']) {
      const port = hostPort(otelcol.receivers.otlp.protocols[proto].endpoint).port;
      expect(published(collector!).map(([, inside]) => inside)).toContain(port);
    }

    // Jaeger keeps traces in memory and serves the UI the alert links point at.
    const storage = jaegerConfig.extensions.jaeger_query.storage.traces;
    expect(jaegerConfig.extensions.jaeger_storage.backends[storage]).toHaveProperty('memory');
    expect(jaegerConfig.exporters.jaeger_storage_exporter.trace_storage).toBe(storage);
    expect(jaegerConfig.service.pipelines.traces.receivers).toContain('otlp');
    const ui = hostPort(jaegerConfig.extensions.jaeger_query.http.endpoint).port;
    const link = new URL(processor.jaegerUrl);
    expect(link.hostname).toBe('localhost');
    expect(published(jaeger!)).toContainEqual([Number(link.port), ui]);
  });

  it('publishes the processor on loopback, creates the topics it uses, and checks its health where it listens', () => {
    const { waitgraph, 'kafka-init': init } = compose.services as Record<string, Service>;
    const processor = processorOptions(waitgraph!);
    expect(processor.host).toBe('0.0.0.0');
    expect(waitgraph!.ports!.map((p) => Number(p.split(':')[2]))).toContain(processor.port);
    expect(waitgraph!.healthcheck!.test.join(' ')).toContain(`http://127.0.0.1:${processor.port}/healthz`);
    expect(processor.alertFile?.startsWith('/data/')).toBe(true);
    expect(waitgraph!.volumes).toContain('waitgraph-data:/data');
    expect(waitgraph!.depends_on).toHaveProperty('kafka-init');

    const script = readFileSync(mounted(init!, init!.entrypoint!.at(-1)!), 'utf8');
    const created = [...script.matchAll(/^create (\S+)(.*)$/gm)].map((m) => ({ topic: m[1], rest: m[2] }));
    expect(created.map((c) => c.topic).sort()).toEqual([processor.alertTopic, processor.deadLetterTopic, processor.logsTopic, processor.spansTopic].sort());
    expect(created.find((c) => c.topic === processor.alertTopic)!.rest).toContain('cleanup.policy=compact');
  });

  it('gives the Collector a config that a Collector of the same version loads', { timeout: SERVER_START_TIMEOUT_MS }, async () => {
    const { collector } = compose.services;
    const tag = collector!.image.split(':')[1]!;
    const manifest = readFileSync(join(ROOT, 'deploy/otelcol-builder.yaml'), 'utf8');
    // The local Collector is built from the same release, so what it accepts the image accepts.
    expect(manifest).toContain(`exporter/kafkaexporter v${tag}`);
    const { stdout } = await run('bash', [join(ROOT, 'scripts/otelcol.sh'), 'path'], { timeout: SERVER_START_TIMEOUT_MS });
    const bin = stdout.trim().split('\n').at(-1)!;
    const config = mounted(collector!, configArg(collector!));
    await run(bin, ['validate', `--config=${config}`]);
    // And it would refuse a config with a mistake in it.
    const broken = join(mkdtempSync(join(tmpdir(), 'waitgraph-compose-')), 'otelcol.yaml');
    writeFileSync(broken, readFileSync(config, 'utf8').replace('partition_traces_by_id:', 'partition_trace_by_id:'));
    await expect(run(bin, ['validate', `--config=${broken}`])).rejects.toThrow(/partition_trace_by_id/);
  });
});
