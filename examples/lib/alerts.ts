/**
 * Reads waitgraph's alert topic, as a user's alert consumer would: every alert since the watch started
 * (JSON, `{ change, finding, ... }`, keyed by the finding's fingerprint), with the time it arrived here.
 * Used by the end-to-end test and `npm run demo` to wait for the alert about a scenario's deadlock.
 *
 * The topic is read from its beginning, so nothing is missed while the consumer group is still joining;
 * alerts published before `since` are skipped.
 */
import { Kafka, logLevel, type Consumer } from 'kafkajs';
import type { Alert } from 'waitgraph/schemas';

/** An alert, as it came off the topic. */
export interface ReceivedAlert {
  alert: Alert;
  /** When this consumer got it (unix ms). */
  receivedAt: number;
  /** The record's Kafka timestamp: when the processor produced it (unix ms). */
  producedAt: number;
}

/** Options of `watchAlerts`. */
export interface AlertWatchOptions {
  brokers: string[];
  /** Default `waitgraph.alerts`. */
  topic?: string;
  /** Alerts produced before this time (unix ms) are skipped. Default: now. */
  since?: number;
}

/** A running watch of the alert topic. */
export interface AlertWatch {
  /** Every alert received so far, oldest first. */
  readonly alerts: readonly ReceivedAlert[];
  /** The first alert received so far, or later, that `match` accepts; rejects after `timeoutMs`. */
  next(match: (a: Alert) => boolean, timeoutMs: number): Promise<ReceivedAlert>;
  stop(): Promise<void>;
}

/** Starts reading the alert topic; resolves once the consumer has joined and is fetching. */
export async function watchAlerts(options: AlertWatchOptions): Promise<AlertWatch> {
  const topic = options.topic ?? 'waitgraph.alerts';
  const since = options.since ?? Date.now();
  const kafka = new Kafka({ clientId: 'waitgraph-examples', brokers: options.brokers, logLevel: logLevel.NOTHING });
  const consumer: Consumer = kafka.consumer({ groupId: `waitgraph-examples-${process.pid}-${Date.now().toString(36)}` });
  const alerts: ReceivedAlert[] = [];
  const waiters = new Set<() => void>();
  let crashed: Error | undefined;
  // kafkajs restarts a consumer after a retriable crash by itself; one it gives up on must not look like silence
  consumer.on(consumer.events.CRASH, ({ payload }) => {
    if (payload.restart) return;
    crashed = payload.error;
    for (const wake of waiters) wake();
  });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
  await consumer.run({
    eachMessage: async ({ message }) => {
      const producedAt = Number(message.timestamp);
      if (!message.value || producedAt < since) return;
      alerts.push({ alert: JSON.parse(message.value.toString('utf8')) as Alert, receivedAt: Date.now(), producedAt });
      for (const wake of waiters) wake();
    },
  });
  await joined;
  return {
    alerts,
    next(match, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = alerts.find((a) => match(a.alert));
          if (found === undefined && crashed !== undefined) {
            clearTimeout(timer);
            waiters.delete(check);
            reject(new Error(`the consumer of ${topic} crashed: ${crashed.message}`));
          }
          if (found === undefined) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(found);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no matching alert on ${topic} within ${timeoutMs} ms (${alerts.length} other alerts seen)`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    stop: () => consumer.disconnect(),
  };
}
