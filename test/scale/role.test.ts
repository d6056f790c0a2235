/**
 * `waitgraph run --role both` on a real broker: a scale-out instance started from the command line decodes
 * a lock cycle spread over two partitions and publishes one alert that follows the alert schema; it serves
 * `/healthz` and `/metrics` (consumer lag of both stages), and stops cleanly on SIGTERM. Without Kafka, a
 * scale-out role is a usage error.
 */
import { spawn } from 'node:child_process';
import { Partitioners } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { lockCycle } from '../../processor/bench/cycle-spans.js';
import { main, type CliIo } from '../../processor/src/cli/main.js';
import { endOffsets, readTopic, waitFor } from '../io/kafka-helpers.js';
import { ensureKafka, testKafkaClient, uniqueTopic } from '../support/kafka.js';
import { freePorts } from '../support/servers.js';
import { schemaErrors, validateAlert } from '../support/schemas.js';

const BIN = new URL('../../bin/waitgraph.js', import.meta.url).pathname;

describe('waitgraph run --role', () => {
  it('refuses a scale-out role without Kafka (exit 2)', async () => {
    let stderr = '';
    const io: CliIo = { stdout: () => {}, stderr: (s) => void (stderr += s), isTTY: false, env: {} };
    expect(await main(['run', '--role', 'both'], io)).toBe(2);
    expect(stderr).toContain('--role both needs Kafka: give --kafka-brokers');
  });

  it('both: decodes, detects and alerts once, in the alert schema', async () => {
    const broker = await ensureKafka();
    const kafka = testKafkaClient(broker.brokers);
    const run = uniqueTopic('role');
    const topics = { spans: `${run}.spans`, logs: `${run}.logs`, waits: `${run}.waits`, alerts: `${run}.alerts` };
    await broker.createTopic(topics.spans, 2);
    await broker.createTopic(topics.logs, 1);
    const [port] = await freePorts(1);
    const url = `http://127.0.0.1:${port}`;
    const args = ['run', '--role', 'both', '--kafka-brokers', broker.bootstrap, '--group-id', run, '--instance-id', 'role-test', '--port', String(port)];
    args.push('--spans-topic', topics.spans, '--logs-topic', topics.logs, '--waits-topic', topics.waits, '--alert-topic', topics.alerts);
    args.push('--dead-letter-topic', '', '--alert-file', '', '--stdout', 'none', '--log-level', 'warn', '--stale-after', '10m');
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
    try {
      // Ready: both of its groups have settled.
      const admin = kafka.admin();
      await admin.connect();
      await waitFor(
        'the decode and ownership groups',
        async () => {
          const { groups } = await admin.describeGroups([`${run}-decode`, `${run}-detect`]);
          return groups.every((g) => g.state === 'Stable' && g.members.length === 1);
        },
        60_000,
      );
      await admin.disconnect();

      const cycle = lockCycle(`${run}-cycle`);
      const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
      await producer.connect();
      await producer.send({ topic: topics.spans, messages: [{ partition: 0, value: Buffer.from(cycle.messages[0]) }] });
      await producer.send({ topic: topics.spans, messages: [{ partition: 1, value: Buffer.from(cycle.messages[1]) }] });
      await producer.disconnect();

      const [msg] = await readTopic(kafka, topics.alerts, 1);
      const alert = JSON.parse(msg!.value.toString('utf8'));
      expect(validateAlert(alert), schemaErrors(validateAlert)).toBe(true);
      expect(msg!.key).toBe(cycle.fingerprint);
      expect(alert).toMatchObject({ change: 'opened', fingerprint: cycle.fingerprint, detector: { instance: 'role-test' } });
      expect(alert.finding.resources).toEqual([...cycle.locks].sort());
      // No second alert.
      await new Promise((ok) => setTimeout(ok, 2_000));
      expect(Object.values(await endOffsets(kafka, topics.alerts)).reduce((n, o) => n + Number(o), 0)).toBe(1);

      // Health and metrics, as the single-instance processor serves them; no OTLP/HTTP receiver.
      const health = await fetch(`${url}/healthz`);
      expect(health.status).toBe(200);
      expect(await health.json()).toMatchObject({ role: 'both', instance: 'role-test' });
      const metrics = await (await fetch(`${url}/metrics`)).text();
      expect(metrics).toMatch(new RegExp(`^waitgraph_consumer_lag\\{topic="${topics.spans.replace(/\./g, '\\.')}",partition="[01]"\\} 0$`, 'm'));
      expect(metrics).toMatch(new RegExp(`^waitgraph_consumer_lag\\{topic="${topics.waits.replace(/\./g, '\\.')}",partition="\\d+"\\} 0$`, 'm'));
      expect(metrics).toMatch(/^waitgraph_findings_total\{kind="deadlock",state="active"\} 1$/m);
      // The detection stage's graph: the cycle's two spans, as the single-instance processor counts it.
      expect(metrics).toMatch(/^waitgraph_graph_spans 2$/m);
      expect(metrics).toMatch(/^waitgraph_graph_edges 2$/m);
      expect(metrics).toMatch(/^waitgraph_spans_forgotten_total 0$/m);
      // The decode stage's thread's garbage collections (its start alone makes some), under its name.
      expect(metrics).toMatch(/^waitgraph_thread_gc_duration_seconds_count\{thread="decode",kind="[a-z]+"\} [1-9]\d*$/m);
      expect(metrics).not.toMatch(/^waitgraph_thread_gc_duration_seconds_count\{thread="kafka"/m);
      expect((await fetch(`${url}/v1/traces`, { method: 'POST', body: '{}' })).status).toBe(404);
    } finally {
      const exited = new Promise<number | null>((ok) => child.once('exit', (code) => ok(code)));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    }
  }, 120_000);
});
