/**
 * Where alerts go: stdout (readable text or JSON lines), a JSON-lines file, and the Kafka alert topic.
 * Every sink takes the alerts of one detection pass at once and resolves when they are written; the
 * pipeline publishes to the sinks in order (the record of what was announced first), so a failure of a
 * later sink never leaves an alert unrecorded.
 */
import { appendFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Alert } from '../../../schemas/index.js';
import type { Style } from '../cli/report.js';
import { WaitgraphError } from '../errors.js';
import { KafkaAlertSink, type KafkaClientOptions, type Logger } from '../io/index.js';
import { renderAlertText } from './alerts.js';

/** A destination of alerts. */
export interface AlertSink {
  /** For logs: `stdout`, `file:<path>`, `kafka:<topic>`. */
  readonly name: string;
  start(): Promise<void>;
  /** Writes the alerts, in order; resolves once they are written. */
  publish(alerts: readonly Alert[]): Promise<void>;
  /** Finishes writes in progress (up to `graceMs`) and lets go of resources. Idempotent. */
  shutdown(graceMs: number): Promise<void>;
}

/** Alerts on stdout: a readable block each, or one JSON object a line. */
export class StdoutAlertSink implements AlertSink {
  readonly name = 'stdout';

  constructor(
    private readonly format: 'text' | 'json',
    private readonly write: (s: string) => void,
    private readonly style: Style,
  ) {}

  async start(): Promise<void> {}

  async publish(alerts: readonly Alert[]): Promise<void> {
    for (const a of alerts) this.write(this.format === 'json' ? JSON.stringify(a) + '\n' : renderAlertText(a, this.style) + '\n');
  }

  async shutdown(): Promise<void> {}
}

/** Alerts appended to a JSON-lines file, one object a line; the file and its folder are created. */
export class FileAlertSink implements AlertSink {
  readonly name: string;

  constructor(private readonly path: string) {
    this.name = `file:${path}`;
  }

  async start(): Promise<void> {
    try {
      await mkdir(dirname(this.path), { recursive: true });
      // Fails now, at start, if the file cannot be written, not at the first deadlock.
      await appendFile(this.path, '');
    } catch (err) {
      throw new WaitgraphError('bad-config', `alert file ${this.path}: ${(err as Error).message}`, { cause: err });
    }
  }

  async publish(alerts: readonly Alert[]): Promise<void> {
    if (alerts.length === 0) return;
    // One append of whole lines: a process killed mid-write tears at most the last line, which the
    // ledger skips when it reads the file back.
    try {
      await appendFile(this.path, alerts.map((a) => JSON.stringify(a) + '\n').join(''));
    } catch (err) {
      throw new WaitgraphError('io', `alert file ${this.path}: ${(err as Error).message}`, { cause: err });
    }
  }

  async shutdown(): Promise<void> {}
}

/** Alerts on the Kafka alert topic, keyed by fingerprint, with `KafkaAlertSink`. */
export class KafkaTopicAlertSink implements AlertSink {
  readonly name: string;
  private readonly sink: KafkaAlertSink;

  constructor(options: KafkaClientOptions & { topic: string; logger: Logger }) {
    this.name = `kafka:${options.topic}`;
    // The alert is the message body as it is: it carries `change` and `finding`, which is what the sink keys on.
    this.sink = new KafkaAlertSink({ ...options, render: (c) => c });
  }

  start(): Promise<void> {
    return this.sink.start();
  }

  publish(alerts: readonly Alert[]): Promise<void> {
    return this.sink.publish(alerts);
  }

  shutdown(graceMs: number): Promise<void> {
    return this.sink.shutdown(graceMs);
  }
}
