/**
 * The two families of wait events a lock-like thing records, with their attribute objects built once per
 * lock or pool (frozen, so one object serves every event of it): lock events for mutexes and
 * reader-writer locks, pool events for semaphores and connection pools.
 */
import type { Attributes } from '@opentelemetry/api';
import { ATTR, EVENT, type EventName } from '../../../schemas/index.js';

/** The events a lock or pool records and their attributes. */
export interface EventSet {
  wait: EventName;
  acquire: EventName;
  release: EventName;
  timeout: EventName;
  /** Attributes of the wait, acquire and timeout events. */
  attributes: Attributes;
  /** Attributes of the release event. */
  releaseAttributes: Attributes;
}

/** Events of the lock `id` of kind `kind` (`mutex`, `rwlock`, ...). */
export function lockEvents(id: string, kind: string): EventSet {
  return {
    wait: EVENT.LOCK_WAIT,
    acquire: EVENT.LOCK_ACQUIRE,
    release: EVENT.LOCK_RELEASE,
    timeout: EVENT.LOCK_TIMEOUT,
    attributes: Object.freeze({ [ATTR.LOCK_ID]: id, [ATTR.LOCK_KIND]: kind }),
    releaseAttributes: Object.freeze({ [ATTR.LOCK_ID]: id }),
  };
}

/** Events of the pool `name` of `size` units (size omitted where unknown). */
export function poolEvents(name: string, size: number | undefined): EventSet {
  const attributes: Attributes = { [ATTR.POOL_NAME]: name };
  if (size !== undefined && Number.isInteger(size) && size > 0) attributes[ATTR.POOL_SIZE] = size;
  return {
    wait: EVENT.POOL_WAIT,
    acquire: EVENT.POOL_CHECKOUT,
    release: EVENT.POOL_CHECKIN,
    timeout: EVENT.POOL_TIMEOUT,
    attributes: Object.freeze(attributes),
    releaseAttributes: Object.freeze({ [ATTR.POOL_NAME]: name }),
  };
}
