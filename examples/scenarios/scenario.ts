/**
 * What a scenario is: the services it runs, what the deadlock it drives must look like to waitgraph, and
 * two drivers over real HTTP: `deadlock()` sends the requests that deadlock and returns as soon as the
 * driver itself sees the deadlock complete (in PostgreSQL's lock table, or in the services' gauges);
 * `calm()` sends the same requests one at a time, which must all succeed with no deadlock.
 */
import type pg from 'pg';
import type { CallResult } from '../lib/http-service.js';
import type { ServiceSpec } from '../lib/stack.js';

/** What drivers get. */
export interface DriveContext {
  /** Service name → base URL. */
  urls: Record<string, string>;
  /** A connection pool to the examples' database (for the scenarios that use it). */
  db: pg.Pool;
  /** Progress lines, for people watching. */
  log: (line: string) => void;
}

/** A deadlock the driver made. */
export interface DeadlockRun {
  /** When the driver saw the deadlock complete (unix ms). */
  formedAt: number;
  /** What the driver saw of it: PostgreSQL's lock waits, service gauges. */
  evidence: Record<string, unknown>;
  /** The answers of the deadlocked requests, once the scenario's timeout has broken the deadlock. */
  settled: Promise<Record<string, CallResult>>;
}

/** What waitgraph's alert about the scenario's deadlock must say. */
export interface ExpectedFinding {
  /** Sorted service names of the deadlock's core. */
  services: string[];
  /** Sorted lock ids, pool names and certificate ids the core waits for. */
  resources: string[];
  /** The wait-ending event that breaks it. */
  brokenBy: string;
}

/** One scenario. */
export interface Scenario {
  /** Short id: `pg-row-locks`, `pool`, `sidecar-retry`, `cert-wait`. */
  id: string;
  title: string;
  /** Who holds and waits for what, in a few lines. */
  story: string[];
  services: ServiceSpec[];
  expected: ExpectedFinding;
  deadlock(ctx: DriveContext): Promise<DeadlockRun>;
  calm(ctx: DriveContext): Promise<Record<string, CallResult>>;
}
