/**
 * Which waits and holds of one span are still open, read from its events alone (any emitter's, not only
 * waitgraph's), following the pairing rules of the event contract: a wait ends with its acquire, checkout,
 * done, ready, resume or timeout; a hold ends with its release or checkin; an issue ends with its ready.
 * Waits pair up per task (`task.id` of the event, else of the span), so siblings on one span do not end
 * each other's waits. Pure code: no clock, no SDK.
 */
import type { AttributeValue, Attributes, HrTime } from '@opentelemetry/api';
import { ATTR, EVENT } from '../../../schemas/index.js';

/** The part of a span event this module reads. */
export interface EventLike {
  name: string;
  time: HrTime;
  attributes?: Attributes;
}

/** Opened items, by key, as a FIFO of their start times in milliseconds. */
type Open = Map<string, number[]>;

function str(value: AttributeValue | undefined): string {
  return value === undefined ? '' : String(value);
}

function open(items: Open, key: string, at: number): void {
  const times = items.get(key);
  if (times === undefined) items.set(key, [at]);
  else times.push(at);
}

function close(items: Open, key: string): void {
  const times = items.get(key);
  if (times === undefined) return;
  times.shift();
  if (times.length === 0) items.delete(key);
}

/** Closes every open item whose key starts with `prefix`. */
function closeAll(items: Open, prefix: string): void {
  for (const key of items.keys()) if (key.startsWith(prefix)) items.delete(key);
}

/**
 * The start time (unix milliseconds) of the oldest wait or hold still open among `events`, or undefined
 * when none is open. `spanTask` is the span's own `task.id` attribute, if any.
 */
export function oldestOpen(events: readonly EventLike[], spanTask?: AttributeValue): number | undefined {
  const items: Open = new Map();
  for (const event of events) {
    const a = event.attributes ?? {};
    const task = str(a[ATTR.TASK_ID] ?? spanTask);
    const at = event.time[0] * 1e3 + event.time[1] / 1e6;
    const lock = `${task}\u0000${str(a[ATTR.LOCK_ID])}`;
    const pool = `${task}\u0000${str(a[ATTR.POOL_NAME])}`;
    const cert = str(a[ATTR.CERT_ID]);
    switch (event.name) {
      case EVENT.LOCK_WAIT:
        open(items, `lw\u0000${lock}`, at);
        break;
      case EVENT.LOCK_ACQUIRE:
        close(items, `lw\u0000${lock}`);
        open(items, `lh\u0000${lock}`, at);
        break;
      case EVENT.LOCK_RELEASE:
        close(items, `lh\u0000${lock}`);
        break;
      case EVENT.LOCK_TIMEOUT:
        close(items, `lw\u0000${lock}`);
        break;
      case EVENT.POOL_WAIT:
        open(items, `pw\u0000${pool}`, at);
        break;
      case EVENT.POOL_CHECKOUT:
        close(items, `pw\u0000${pool}`);
        open(items, `ph\u0000${pool}`, at);
        break;
      case EVENT.POOL_CHECKIN:
        close(items, `ph\u0000${pool}`);
        break;
      case EVENT.POOL_TIMEOUT:
        close(items, `pw\u0000${pool}`);
        break;
      case EVENT.RPC_WAIT:
        open(items, `rw\u0000${task}`, at);
        break;
      case EVENT.RPC_DONE:
      case EVENT.RPC_TIMEOUT:
        close(items, `rw\u0000${task}`);
        break;
      case EVENT.CERT_WAIT:
        open(items, `cw\u0000${cert}\u0000${task}`, at);
        break;
      case EVENT.CERT_ISSUE:
        open(items, `ci\u0000${cert}\u0000`, at);
        break;
      case EVENT.CERT_READY:
        closeAll(items, `cw\u0000${cert}\u0000`);
        closeAll(items, `ci\u0000${cert}\u0000`);
        break;
      case EVENT.CERT_TIMEOUT:
        close(items, `cw\u0000${cert}\u0000${task}`);
        break;
      case EVENT.TASK_WAIT:
        open(items, `tw\u0000${task}`, at);
        break;
      case EVENT.TASK_RESUME:
      case EVENT.TASK_TIMEOUT:
        close(items, `tw\u0000${task}`);
        break;
    }
  }
  let oldest: number | undefined;
  for (const times of items.values()) {
    if (oldest === undefined || times[0]! < oldest) oldest = times[0];
  }
  return oldest;
}
