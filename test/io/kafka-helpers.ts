/**
 * Helpers of the Kafka adapter tests: decoding a source message the way the processor's wiring does, a
 * logger that records, committed offsets as the broker reports them, reading a topic back, and a finding.
 */
import type { IHeaders, Kafka } from 'kafkajs';
import { decodeOtlpJson } from '../../processor/src/decode/otlp-json.js';
import { decodeOtlpLogsProto, decodeOtlpTracesProto } from '../../processor/src/decode/otlp-proto.js';
import type { Logger, LogFields, SourceMessage } from '../../processor/src/io/index.js';
import type { DecodedBatch } from '../../processor/src/model/span.js';
import type { Finding } from '../../schemas/index.js';

/** Decodes a message by its topic's signal and encoding, with the processor's decoders. */
export function decodeMessage(m: SourceMessage): DecodedBatch {
  if (m.encoding === 'otlp_json') return decodeOtlpJson(m.value.toString('utf8'), m.name);
  return m.signal === 'traces' ? decodeOtlpTracesProto(m.value, m.name) : decodeOtlpLogsProto(m.value, m.name);
}

/** A logger that keeps what it is told. */
export function recordingLogger(): Logger & { records: { level: string; message: string; fields?: LogFields }[] } {
  const records: { level: string; message: string; fields?: LogFields }[] = [];
  return {
    records,
    info: (message, fields) => void records.push({ level: 'info', message, fields }),
    warn: (message, fields) => void records.push({ level: 'warn', message, fields }),
    error: (message, fields) => void records.push({ level: 'error', message, fields }),
  };
}

/** Polls until `check` returns true, or fails after `timeoutMs`. */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((ok) => setTimeout(ok, 50));
  }
}

/** The group's committed offsets of a topic, by partition ('-1' where none is committed). */
export async function committedOffsets(kafka: Kafka, groupId: string, topic: string): Promise<Record<number, string>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const [t] = await admin.fetchOffsets({ groupId, topics: [topic] });
    return Object.fromEntries(t!.partitions.map((p) => [p.partition, p.offset]));
  } finally {
    await admin.disconnect();
  }
}

/** The end offsets of a topic, by partition. */
export async function endOffsets(kafka: Kafka, topic: string): Promise<Record<number, string>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return Object.fromEntries((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, p.high]));
  } finally {
    await admin.disconnect();
  }
}

/** A message read back from a topic. */
export interface ReadMessage {
  partition: number;
  offset: string;
  key: string | null;
  value: Buffer;
  headers: Record<string, string>;
}

/** Reads a topic from the beginning until `count` messages have come. */
export async function readTopic(kafka: Kafka, topic: string, count: number, timeoutMs = 30_000): Promise<ReadMessage[]> {
  const consumer = kafka.consumer({ groupId: `reader-${topic}-${Math.random().toString(36).slice(2)}`, maxWaitTimeInMs: 100 });
  const out: ReadMessage[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        out.push({
          partition,
          offset: message.offset,
          key: message.key?.toString('utf8') ?? null,
          value: message.value ?? Buffer.alloc(0),
          headers: headerStrings(message.headers ?? {}),
        });
      },
    });
    await waitFor(`${count} messages on ${topic}`, () => out.length >= count, timeoutMs);
    return out;
  } finally {
    await consumer.disconnect();
  }
}

function headerStrings(headers: IHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    const one = Array.isArray(v) ? v[v.length - 1] : v;
    if (one !== undefined) out[k] = one.toString();
  }
  return out;
}

/** A two-task lock cycle, as the detector reports it. */
export function deadlock(fingerprint: string, state: 'active' | 'resolved'): Finding {
  const task = (service: string, spanId: string, holds: string, waits: string) => ({
    key: `${service}/t1`,
    service,
    taskId: 't1',
    traceId: '5b8efff798038103d269b633813fc60c',
    spanId,
    waitsFor: [{ kind: 'lock' as const, resource: waits, since: '2025-03-14T09:00:01.000Z', spanId }],
    holds: [{ kind: 'lock' as const, resource: holds, since: '2025-03-14T09:00:00.000Z' }],
  });
  return {
    kind: 'deadlock',
    state,
    fingerprint,
    summary: 'orders and payments wait for each other',
    chain: ['orders holds A, waits for B', 'payments holds B, waits for A'],
    resources: ['A', 'B'],
    services: ['orders', 'payments'],
    tasks: [task('orders', '1111111111111111', 'A', 'B'), task('payments', '2222222222222222', 'B', 'A')],
    victims: { count: 0, tasks: [] },
    links: [],
    formedAt: '2025-03-14T09:00:01.000Z',
    ...(state === 'resolved'
      ? {
          resolvedAt: '2025-03-14T09:00:31.000Z',
          durationMs: 30_000,
          brokenBy: {
            event: 'lock.timeout',
            task: { service: 'orders', taskId: 't1', traceId: '5b8efff798038103d269b633813fc60c', spanId: '1111111111111111' },
            at: '2025-03-14T09:00:31.000Z',
          },
        }
      : {}),
  };
}
