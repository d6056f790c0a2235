/**
 * Ids that waitgraph makes up inside one process: task ids, and the ids of in-process locks and pools.
 *
 * The contract wants a task id unique within its service instance, and compares lock and pool ids across
 * services. A random tag per module instance (so per process, and per worker thread, since each isolate
 * loads its own copy) keeps two processes apart even when they share a `service.name` and set no
 * `service.instance.id`, and keeps one service's private mutex from being mistaken for another's.
 */
import { randomBytes } from 'node:crypto';

/** This process's tag: 8 hex digits. */
export const PROCESS_TAG = randomBytes(4).toString('hex');

let lastTask = 0;
let lastLocal = 0;

/** A new task id, unique in this process and unlikely to collide with any other process's. */
export function newTaskId(): string {
  return `${PROCESS_TAG}-t${++lastTask}`;
}

/**
 * A new id for an in-process lock or pool: `<name>@<process tag>#<n>`, where name defaults to the kind.
 * Locks shared between services (a database row, a distributed lock) must be given an explicit id instead.
 */
export function localId(kind: string, name?: string): string {
  return `${name ?? kind}@${PROCESS_TAG}#${++lastLocal}`;
}
