/**
 * pg's Pool (the pg-pool package, >= 3 < 4): `connect()` records `pool.wait` when every connection is
 * busy (nothing idle and `max` reached, or others already queued), `pool.checkout` when a client is
 * handed over and `pool.timeout` when the connect fails after waiting (connectionTimeoutMillis);
 * `client.release()` records `pool.checkin` on the span of the connect that took it. `pool.query()` goes
 * through the same `connect`, so plain queries are covered. `pool.size` is `max`; `pool.name` defaults
 * to `pg:<host>:<port>/<database>`, read as pg reads its connection settings.
 *
 * `PgPoolInstrumentation` patches pg-pool's prototype when it is required, which happens inside pg even
 * when the application imports pg as ESM; `instrumentPgPool()` wraps one pool in place (and names it).
 * Both the promise and the callback form of `connect` are kept as they are.
 */
import type { Pool as PgPool, PoolClient, PoolConfig } from 'pg';
import type { InstrumentationConfig } from '@opentelemetry/instrumentation';
import type { Span } from '@opentelemetry/api';
import { Type, type Static } from '@sinclair/typebox';
import { poolEvents } from '../core/event-sets.js';
import { checkOptions } from '../core/options.js';
import { recordingSpan, swallow } from '../core/recorder.js';
import { currentTaskId } from '../core/task.js';
import { WaitgraphInstrumentation, wrapOwn, type AnyFn } from './patching.js';
import { callUnnested, nesting, Trackers, type Tracker, type Wait } from './tracker.js';

/** The pg-pool versions this instrumentation supports. */
export const PG_POOL_VERSIONS = ['>=3.0.0 <4'];

type ConnectCallback = (err: Error | undefined, client: PoolClient | undefined, done: PoolClient["release"]) => void;
/** The parts of a pg Pool this module reads. */
type AnyPgPool = PgPool & { options: PoolConfig & { max: number } };

const trackers = new Trackers();

/** `pg:<host>:<port>/<database>`, from the pool's options, else the PG* environment, else pg's defaults. */
export function pgPoolName(options: PoolConfig): string {
  let host = options.host ?? process.env.PGHOST;
  let port: string | number | undefined = options.port ?? process.env.PGPORT;
  let database = options.database ?? process.env.PGDATABASE;
  if (options.connectionString !== undefined) {
    try {
      const url = new URL(options.connectionString);
      host = decodeURIComponent(url.hostname) || host;
      port = url.port || port;
      database = decodeURIComponent(url.pathname.slice(1)) || database;
    } catch {
      // not a URL (a libpq keyword string): keep what the options and environment say
    }
  }
  const user = options.user ?? process.env.PGUSER ?? process.env.USER;
  return `pg:${host ?? 'localhost'}:${port ?? 5432}/${database ?? user ?? ''}`;
}

function trackerOf(pool: AnyPgPool): Tracker {
  return trackers.of(pool, () => poolEvents(pgPoolName(pool.options), pool.options.max));
}

/** Puts a recording `release` on the client for this checkout (pg gives each checkout a fresh one). */
function takeClient(tracker: Tracker, span: Span, task: string | undefined, wait: Wait | undefined, client: PoolClient): void {
  try {
    const hold = tracker.acquired(span, task, wait);
    if (hold === undefined) return;
    const release = client.release;
    client.release = function releaseClient(this: unknown) {
      tracker.released(hold);
      return release.apply(this, arguments as unknown as [boolean]);
    };
  } catch (err) {
    swallow('recording a pg checkout', err);
  }
}

function wrapConnect(original: AnyFn): AnyFn {
  return function connect(this: AnyPgPool, callback?: ConnectCallback) {
    const args = arguments as unknown as unknown[];
    if (nesting.depth > 0) return original.apply(this, args);
    const span = recordingSpan();
    if (span === undefined) return original.apply(this, args);
    const task = currentTaskId();
    let tracker: Tracker;
    let wait: Wait | undefined;
    try {
      tracker = trackerOf(this);
      // clients not idle are checked out or connecting for an earlier request: with the queued requests
      // they take every connection the pool may open
      const busy = this.waitingCount + this.totalCount - this.idleCount >= this.options.max;
      if (busy && !this.ending) wait = tracker.waited(span, task);
    } catch (err) {
      swallow('recording a pg connect', err);
      return original.apply(this, args);
    }
    if (typeof callback === 'function') {
      const recorded: ConnectCallback = (err, client, done) => {
        if (err !== undefined && err !== null) tracker.timedOut(wait);
        else if (client !== undefined) {
          takeClient(tracker, span, task, wait, client);
          done = client.release;
        }
        return callback(err, client, done);
      };
      return callUnnested(original, this, [recorded]);
    }
    const connected: Promise<PoolClient> = callUnnested(original, this, args);
    return connected.then(
      (client) => {
        takeClient(tracker, span, task, wait, client);
        return client;
      },
      (err: unknown) => {
        tracker.timedOut(wait);
        throw err;
      },
    );
  };
}

/** Options of `instrumentPgPool`. */
export const PgPoolOptionsSchema = Type.Object(
  {
    /** The `pool.name` the events carry. Default: `pg:<host>:<port>/<database>`. */
    name: Type.Optional(Type.String({ minLength: 1 })),
  },
  { additionalProperties: false },
);
/** Options of `instrumentPgPool`. */
export type PgPoolOptions = Static<typeof PgPoolOptionsSchema>;

/** Instruments one pg Pool in place; returns it. */
export function instrumentPgPool<P extends PgPool>(pool: P, options?: PgPoolOptions): P {
  const o = checkOptions(PgPoolOptionsSchema, options, 'instrumentPgPool');
  const p = pool as unknown as AnyPgPool;
  trackers.set(pool, poolEvents(o.name ?? pgPoolName(p.options), p.options.max));
  wrapOwn(pool, { connect: wrapConnect });
  return pool;
}

/** Configuration of `PgPoolInstrumentation`. */
export type PgPoolInstrumentationConfig = InstrumentationConfig;

/** Patches pg-pool's `Pool.prototype.connect` when the module is loaded. */
export class PgPoolInstrumentation extends WaitgraphInstrumentation<PgPoolInstrumentationConfig> {
  constructor(config: PgPoolInstrumentationConfig = {}) {
    super('pg-pool', config);
  }

  protected init() {
    return this.prototypePatch('pg-pool', PG_POOL_VERSIONS, (Pool: { prototype: object }) => Pool.prototype, { connect: wrapConnect });
  }
}
