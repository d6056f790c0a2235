/**
 * What the Kafka adapters share: the kafkajs client they are built on, how kafkajs failures map onto
 * WaitgraphError, and the retry loop with capped exponential backoff that keeps an adapter working through
 * a broker restart instead of giving up after kafkajs's own few retries.
 */
import { Kafka, logLevel } from 'kafkajs';
import { WaitgraphError } from '../errors.js';
import { kafkajsLogCreator, stderrLogger, type Logger } from './log.js';

/** Connection options common to the Kafka adapters. */
export interface KafkaClientOptions {
  /** Bootstrap brokers, `host:port`. Required unless `kafka` is given. */
  brokers?: string[];
  /** The client id the broker sees. Default `waitgraph`. */
  clientId?: string;
  /** A kafkajs client to use instead of creating one; `brokers` and `clientId` are then ignored. */
  kafka?: Kafka;
  /** Where to report. Default JSON lines on stderr. */
  logger?: Logger;
}

/** Backoff of the adapters' own retries. */
export interface BackoffOptions {
  /** First wait, in ms. Default 200. */
  initialMs?: number;
  /** Longest wait, in ms. Default 5000. */
  maxMs?: number;
}

/**
 * Retries of an idempotent producer: kafkajs resends a failed batch with its original sequence numbers, so
 * the broker drops the copies that did land; it keeps doing so through an outage instead of giving up and
 * leaving a resend (new sequence numbers, a possible duplicate) to its caller.
 */
export const IDEMPOTENT_PRODUCER_RETRY = { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 200, maxRetryTime: 5000 };

/** Returns the given kafkajs client, or a new one for `brokers`. */
export function kafkaClient(options: KafkaClientOptions): Kafka {
  if (options.kafka) return options.kafka;
  if (!options.brokers?.length) throw new WaitgraphError('bad-config', 'Kafka: no brokers given');
  return new Kafka({
    clientId: options.clientId ?? 'waitgraph',
    brokers: options.brokers,
    logLevel: logLevel.WARN,
    logCreator: kafkajsLogCreator(options.logger ?? stderrLogger),
    // kafkajs's own retries cover short blips; longer outages are retried by the adapters.
    retry: { initialRetryTime: 200, maxRetryTime: 5000, retries: 8 },
  });
}

interface KafkaJsErrorLike {
  name?: string;
  retriable?: boolean;
  type?: string;
  cause?: unknown;
  originalError?: unknown;
}

/**
 * Wraps a kafkajs failure as a WaitgraphError with code `broker`. It is retriable unless the broker refused
 * the request for good (a protocol error kafkajs marks non-retriable, such as a record over the size limit
 * or a denied topic): connection loss and exhausted retries are retriable, because the broker may come back.
 */
export function brokerError(what: string, err: unknown): WaitgraphError {
  if (err instanceof WaitgraphError) return err;
  let retriable = true;
  for (let e = err as KafkaJsErrorLike | undefined, depth = 0; e && depth < 8; depth++) {
    if (e.name === 'KafkaJSProtocolError' && e.retriable === false) retriable = false;
    e = (e.originalError ?? e.cause) as KafkaJsErrorLike | undefined;
  }
  const detail = err instanceof Error ? err.message : String(err);
  return new WaitgraphError('broker', `${what}: ${detail}`, { retriable, cause: err });
}

/** Thrown by `retrying` when the adapter shuts down before the operation succeeded. */
export function shutdownError(what: string): WaitgraphError {
  return new WaitgraphError('io', `${what}: shut down before it succeeded`, { retriable: false });
}

/** Whether an error comes from kafkajs (its classes are all named `KafkaJS...`). */
export function isKafkaJsError(err: unknown): boolean {
  return err instanceof Error && err.name.startsWith('KafkaJS');
}

/** How `retrying` is controlled. */
export interface RetryControl {
  /** Aborted when the adapter shuts down: the retry loop then stops at once. */
  signal: AbortSignal;
  logger: Logger;
  backoff?: BackoffOptions;
  /** Called after each wait, before the next attempt (a consumer heartbeats there). */
  onWait?: () => Promise<void>;
}

/**
 * Runs `op` until it succeeds, waiting with capped exponential backoff after each retriable failure (a
 * retriable WaitgraphError, or a kafkajs error that `brokerError` deems retriable), and logging the first
 * failure of a streak and the recovery, not every attempt. Any other error is rethrown as it is. Rejects
 * with `shutdownError` once the signal is aborted.
 */
export async function retrying<T>(what: string, op: () => Promise<T>, ctl: RetryControl): Promise<T> {
  const initial = ctl.backoff?.initialMs ?? 200;
  const max = ctl.backoff?.maxMs ?? 5000;
  let delay = initial;
  let failures = 0;
  for (;;) {
    if (ctl.signal.aborted) throw shutdownError(what);
    try {
      const result = await op();
      if (failures > 0) ctl.logger.info(`${what}: recovered`, { failures });
      return result;
    } catch (err) {
      const e = err instanceof WaitgraphError ? err : isKafkaJsError(err) ? brokerError(what, err) : undefined;
      if (!e?.retriable) throw e ?? err;
      if (failures++ === 0) ctl.logger.warn(`${what}: failed; retrying with backoff`, { error: e.message });
      await sleep(delay, ctl.signal);
      delay = Math.min(max, delay * 2);
      if (!ctl.signal.aborted) await ctl.onWait?.();
    }
  }
}

/** Waits, on a timer that does not keep the process alive; returns early when the signal is aborted. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((ok) => {
    if (signal?.aborted) return ok();
    const timer = setTimeout(done, ms).unref();
    signal?.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      ok();
    }
  });
}
