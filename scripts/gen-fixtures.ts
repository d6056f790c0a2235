/**
 * Generates the scenario fixtures of test/fixtures/scenarios/: recorded spans (OTLP JSON) of real
 * deadlock incidents and of traps that must not be reported, the findings the engine must report for
 * each (`test/fixtures/scenario-expectations.json`), and the folder's README.
 *
 * `npx tsx scripts/gen-fixtures.ts` writes the files; `--check` exits 1 when a committed file differs
 * from what this script generates. The files are committed: they are what users and tests replay.
 * Everything is deterministic (ids are hashes of names, times are offsets from one base time).
 */
import { fileURLToPath } from 'node:url';
import { writeOrCheck } from './lib/generated.js';
import { ATTR, EVENT, PROXY_COMPONENT, type DeadlockState, type FindingKind, type LockMode } from '../schemas/index.js';
import { SpanKind } from '../processor/src/model/span.js';
import {
  FixtureBuilder,
  SEMCONV_THREAD_NAME,
  shuffled,
  type AttrsInput,
  type Resource,
  type SpanBuilder,
  type SpanVersion,
} from '../test/support/trace-builder.js';

/** The folder the fixtures are written to. */
export const SCENARIO_DIR = new URL('../test/fixtures/scenarios/', import.meta.url);

/** The file of expected findings, by fixture file. */
/** Beside the scenario folder, not in it: the folder holds only spans, so it can be analyzed whole. */
export const EXPECTATIONS_FILE = '../scenario-expectations.json';

/** One finding the engine must report for a fixture, in the terms a user sees. */
export interface ExpectedFinding {
  kind: FindingKind;
  /** Deadlocks only. */
  state?: DeadlockState;
  /** Sorted `lock.id`, `pool.name` and `cert.id` values of the core. */
  resources: string[];
  /** Sorted service names of the core. */
  services: string[];
  /** How many tasks are in the core (the cycle or knot; both sides of an inversion). */
  coreTasks: number;
  /** Deadlocks only: how many deadlocked tasks are merely blocked behind the core. */
  victims?: number;
}

/** One scenario: its fixture file, what it recreates, and what the engine must find in it. */
interface Scenario {
  file: string;
  title: string;
  /** One paragraph for the README: the incident, and who waits on whom. */
  description: string;
  build(b: FixtureBuilder): SpanVersion[] | void;
  expect: ExpectedFinding[];
}

// Semantic-convention attributes that give the fixtures their realism; the engine gives them no meaning.
const HTTP_METHOD = 'http.request.method';
const HTTP_ROUTE = 'http.route';
const RPC_METHOD = 'rpc.method';
const SDK_LANGUAGE = 'telemetry.sdk.language';

const java = { [SDK_LANGUAGE]: 'java' };
const go = { [SDK_LANGUAGE]: 'go' };
const node = { [SDK_LANGUAGE]: 'nodejs' };

/** The attributes of a span run by a thread (Java-style `thread.id` and `thread.name`). */
function thread(id: number, name: string): AttrsInput {
  return { [ATTR.THREAD_ID]: id, [SEMCONV_THREAD_NAME]: name };
}

/** The attributes of a span run by a task that is not a thread (goroutine, async flow, session). */
function task(id: string, extra: AttrsInput = {}): AttrsInput {
  return { [ATTR.TASK_ID]: id, ...extra };
}

/** Attributes of a lock event. */
function lock(id: string, kind?: string, mode?: LockMode): AttrsInput {
  const a: AttrsInput = { [ATTR.LOCK_ID]: id };
  if (mode) a[ATTR.LOCK_MODE] = mode;
  if (kind) a[ATTR.LOCK_KIND] = kind;
  return a;
}

/** Attributes of a pool event. */
function pool(name: string, size?: number): AttrsInput {
  return size === undefined ? { [ATTR.POOL_NAME]: name } : { [ATTR.POOL_NAME]: name, [ATTR.POOL_SIZE]: size };
}

/** Attributes of a `task.wait`. */
function waitOn(ids: string[], mode: 'all' | 'any' = 'all'): AttrsInput {
  return { [ATTR.TASK_WAIT_ON]: ids, [ATTR.TASK_WAIT_MODE]: mode };
}

/**
 * A blocking RPC from `caller` to `callee`: a CLIENT child of `caller` (same task) that records
 * `rpc.wait` 50 µs after it starts, and the SERVER span of the callee 1 ms later, run by `serverTask`.
 */
function rpc(caller: SpanBuilder, callee: Resource, method: string, at: number, serverTask: AttrsInput) {
  const client = caller.child(method, { kind: SpanKind.CLIENT, at, attrs: { [RPC_METHOD]: method } });
  client.event(EVENT.RPC_WAIT, at + 0.05, { [ATTR.RPC_PEER_SERVICE]: callee.serviceName });
  const server = client.child(method, { kind: SpanKind.SERVER, at: at + 1, resource: callee, attrs: { ...serverTask, [RPC_METHOD]: method } });
  return { client, server };
}

/** An HTTP SERVER root span of a new trace; `route` is `METHOD /path`, the span name semconv gives it. */
function request(b: FixtureBuilder, traceName: string, resource: Resource, route: string, at: number, runner: AttrsInput): SpanBuilder {
  const [method, path] = route.split(' ');
  return b.trace(traceName).root(route, { resource, kind: SpanKind.SERVER, at, attrs: { ...runner, [HTTP_METHOD]: method, [HTTP_ROUTE]: path } });
}

/** An active deadlock finding. */
function active(resources: string[], services: string[], coreTasks: number, victims = 0): ExpectedFinding {
  return { kind: 'deadlock', state: 'active', resources: [...resources].sort(), services: [...services].sort(), coreTasks, victims };
}

/** A resolved deadlock finding. */
function resolved(resources: string[], services: string[], coreTasks: number): ExpectedFinding {
  return { kind: 'deadlock', state: 'resolved', resources: [...resources].sort(), services: [...services].sort(), coreTasks, victims: 0 };
}

/** A potential deadlock (lock-order inversion) finding. */
function potential(resources: string[], services: string[], coreTasks: number): ExpectedFinding {
  return { kind: 'potential-deadlock', resources: [...resources].sort(), services: [...services].sort(), coreTasks };
}

/** One side of an AB-BA through RPC: a request that locks a row, then calls the other service. */
interface AbBaSide {
  resource: Resource;
  trace: string;
  route: string;
  at: number;
  runner: AttrsInput;
  /** The row the request locks first. */
  row: string;
  /** The RPC to the other service, and the thread of the handler that serves it there. */
  method: string;
  handler: AttrsInput;
}

/**
 * A cross-service AB-BA: each side locks its row, then calls the other side, whose handler waits for
 * the other side's row. Returns each side's spans so a scenario can record how it unwinds.
 */
function abBaThroughRpc(b: FixtureBuilder, one: AbBaSide, two: AbBaSide) {
  const sides = [one, two].map((side) => {
    const req = request(b, side.trace, side.resource, side.route, side.at, side.runner);
    req.event(EVENT.LOCK_ACQUIRE, side.at + 2, lock(side.row, 'row'));
    return { req, side };
  });
  return sides.map(({ req, side }, i) => {
    const other = sides[1 - i];
    const call = rpc(req, other.side.resource, side.method, 20 + i, side.handler);
    call.server.event(EVENT.LOCK_WAIT, 23 + 2 * i, lock(other.side.row, 'row'));
    return { req, ...call };
  });
}

/** Scenario 1, also replayed shuffled and duplicated by the invariance check. */
function crossServiceAbBa(b: FixtureBuilder): void {
  const orders = b.resource('orders', 'orders-6f7c9d4b8-x2k8p', java);
  const billing = b.resource('billing', 'billing-5d8f6c7b9-q4m7z', java);
  abBaThroughRpc(
    b,
    { resource: orders, trace: 'confirm-order-42', route: 'POST /orders/{id}/confirm', at: 0, runner: thread(31, 'http-nio-8080-exec-1'), row: 'orders-db/orders/42', method: 'billing.v1.Billing/Charge', handler: thread(44, 'grpc-default-executor-3') },
    { resource: billing, trace: 'finalize-invoice-7', route: 'POST /invoices/{id}/finalize', at: 2, runner: thread(45, 'http-nio-8081-exec-2'), row: 'orders-db/invoices/7', method: 'orders.v1.Orders/Reserve', handler: thread(32, 'grpc-default-executor-1') },
  );
}

const scenarios: Scenario[] = [
  {
    file: '01-cross-service-ab-ba.json',
    title: 'Cross-service AB-BA through RPC',
    description:
      'Two requests lock rows of the shared `orders-db` in opposite orders across two services. In `orders`, request 1 (thread 31) locks `orders-db/orders/42` and calls `billing.v1.Billing/Charge`; billing\'s handler (thread 44) waits for `orders-db/invoices/7`. In `billing`, request 2 (thread 45) holds `orders-db/invoices/7` and calls `orders.v1.Orders/Reserve`; orders\' handler (thread 32) waits for `orders-db/orders/42`. Every span is a partial snapshot. Chain: orders/31 → (its CLIENT span\'s server child) billing/44 → (lock holder) billing/45 → (server child) orders/32 → (lock holder) orders/31.',
    build: crossServiceAbBa,
    expect: [active(['orders-db/orders/42', 'orders-db/invoices/7'], ['orders', 'billing'], 4)],
  },
  {
    file: '02-self-deadlock-guard.json',
    title: 'Self-deadlock through a non-reentrant guard',
    description:
      'In `storage-node`, an admin RPC handler (thread 88) takes the non-reentrant `exclusivity-guard` to remove a replication peer, then stops the peer\'s replication thread and joins it (`task.wait` on task `57`, mode all). The replication thread (thread 57), on its way out, waits for `exclusivity-guard` to unregister itself. Chain: 88 → (join) 57 → (lock holder) 88.',
    build(b) {
      const node = b.resource('storage-node', 'storage-node-3', java);
      const repl = b.trace('replication-peer-2').root('ReplicationSource.run', { resource: node, at: 0, attrs: thread(57, 'ReplicationSource-peer2') });
      const admin = request(b, 'remove-peer-2', node, 'POST /admin/peers/{id}/remove', 1000, thread(88, 'rpc-handler-7'));
      admin.event(EVENT.LOCK_ACQUIRE, 1001, lock('exclusivity-guard', 'mutex'));
      admin.child('ReplicationSourceManager.removeSource', { at: 1002 }).event(EVENT.TASK_WAIT, 1003, waitOn(['57']));
      repl.child('ReplicationSource.terminate', { at: 1004 }).event(EVENT.LOCK_WAIT, 1004.1, lock('exclusivity-guard', 'mutex'));
    },
    expect: [active(['exclusivity-guard'], ['storage-node'], 2)],
  },
  {
    file: '02b-non-reentrant-self-wait.json',
    title: 'A thread re-enters a non-reentrant lock',
    description:
      'In `storage-node`, the memstore flusher (thread 90) holds the non-reentrant mutex `region-flush-guard` and, through a callback in a nested span of the same thread, asks for it again. A task that waits for a lock it holds exclusively blocks itself: a core of one task.',
    build(b) {
      const node = b.resource('storage-node', 'storage-node-3', java);
      const flush = b.trace('flush-region').root('MemStoreFlusher.flushRegion', { resource: node, at: 0, attrs: thread(90, 'MemStoreFlusher.0') });
      flush.event(EVENT.LOCK_ACQUIRE, 10, lock('region-flush-guard', 'mutex'));
      flush.child('Region.requestFlush', { at: 12 }).event(EVENT.LOCK_WAIT, 12.2, lock('region-flush-guard', 'mutex'));
    },
    expect: [active(['region-flush-guard'], ['storage-node'], 1)],
  },
  {
    file: '03-rwlock-upgrade.json',
    title: 'Reader-writer upgrade on one hash-map key',
    description:
      'In `catalog`, two concurrent `computeIfAbsent`-style accessors of the price cache read the same key: both hold the rwlock `map/key-17` shared, and both then ask for it exclusive to write the computed value. Each upgrade waits for the other reader to leave: threads 21 and 22 wait for each other.',
    build(b) {
      const catalog = b.resource('catalog', 'catalog-0', java);
      for (const [i, tid] of [21, 22].entries()) {
        const at = i * 3;
        const req = request(b, `price-${tid}`, catalog, 'GET /products/{id}/price', at, thread(tid, `http-nio-8080-exec-${tid}`));
        const cache = req.child('PriceCache.computeIfAbsent', { at: at + 1 });
        cache.event(EVENT.LOCK_ACQUIRE, at + 1.5, lock('map/key-17', 'rwlock', 'shared'));
        cache.event(EVENT.LOCK_WAIT, at + 10, lock('map/key-17', 'rwlock', 'exclusive'));
      }
    },
    expect: [active(['map/key-17'], ['catalog'], 2)],
  },
  {
    file: '03b-rwlock-cross-wait.json',
    title: 'Reader-writer cross waits between two rwlocks',
    description:
      'In `catalog`, two index-merge threads each read one segment and then want to write the other: thread 23 holds `map/segment-2` shared and waits for `map/segment-5` exclusive; thread 24 holds `map/segment-5` shared and waits for `map/segment-2` exclusive. A writer waits for all readers, so each waits for the other.',
    build(b) {
      const catalog = b.resource('catalog', 'catalog-0', java);
      const segs = ['map/segment-2', 'map/segment-5'];
      for (const [i, tid] of [23, 24].entries()) {
        const merge = b.trace(`merge-${tid}`).root('IndexMerge.run', { resource: catalog, at: i, attrs: thread(tid, `index-merge-${i + 1}`) });
        merge.event(EVENT.LOCK_ACQUIRE, i + 1, lock(segs[i], 'rwlock', 'shared'));
        merge.event(EVENT.LOCK_WAIT, i + 8, lock(segs[1 - i], 'rwlock', 'exclusive'));
      }
    },
    expect: [active(['map/segment-2', 'map/segment-5'], ['catalog'], 2)],
  },
  {
    file: '04-nonblocking-rpc-server.json',
    title: 'Nonblocking RPC server: workers wait for the IO thread',
    description:
      'In `metastore`, a half-sync/half-async Thrift server: the selector thread (thread 10) hands each request to a pool of 4 workers (`rpc-workers`, size 4) and writes their responses. All 4 workers (threads 11-14) hold a worker slot and wait for the selector thread to write their responses (`task.wait` on `10`); the selector thread waits for a free worker (`pool.wait`) to dispatch the next request. The pool is exhausted and every holder waits for the waiter: a knot of 5.',
    build(b) {
      const ms = b.resource('metastore', 'metastore-0', java);
      const io = b.trace('selector').root('TThreadedSelectorServer.select', { resource: ms, at: 0, attrs: thread(10, 'Thread-10-SelectorThread') });
      for (let w = 1; w <= 4; w++) {
        const at = 10 + w;
        const call = b.trace(`get-table-${w}`).root('ThriftHiveMetastore/get_table', { resource: ms, kind: SpanKind.SERVER, at, attrs: { ...thread(10 + w, `pool-1-thread-${w}`), [RPC_METHOD]: 'get_table' } });
        call.event(EVENT.POOL_CHECKOUT, at + 0.1, pool('rpc-workers', 4));
        call.child('FrameBuffer.responseReady', { at: at + 20 }).event(EVENT.TASK_WAIT, at + 20.1, waitOn(['10']));
      }
      io.event(EVENT.POOL_WAIT, 50, pool('rpc-workers', 4));
    },
    expect: [active(['rpc-workers'], ['metastore'], 5)],
  },
  {
    file: '05-pool-monitor-requires-new.json',
    title: 'An 8-connection pool, a monitor and a REQUIRES_NEW transaction',
    description:
      'In `orders`, the JDBC pool `orders-db-pool` has 8 connections. Eight request threads (101-108) each hold a connection and wait for the monitor `InventoryCache.monitor`. Its owner (thread 109) refreshes the cache and, inside a `REQUIRES_NEW` transaction for an audit record, asks the pool for a 9th connection. The pool is exhausted, every holder waits for 109, and 109 waits for the pool: a core of 9. Thirty-six more request threads (110-145) queue in `pool.wait` behind them: victims, not core.',
    build(b) {
      const orders = b.resource('orders', 'orders-7b9d5c6f4-m2n8r', java);
      const owner = request(b, 'refresh-inventory', orders, 'POST /inventory/refresh', 0, thread(109, 'http-nio-8080-exec-9'));
      owner.event(EVENT.LOCK_ACQUIRE, 5, lock('InventoryCache.monitor', 'monitor'));
      owner.child('AuditService.record REQUIRES_NEW', { at: 30 }).event(EVENT.POOL_WAIT, 30.1, pool('orders-db-pool', 8));
      for (let i = 1; i <= 8; i++) {
        const req = request(b, `place-order-${i}`, orders, 'POST /orders', i, thread(100 + i, `http-nio-8080-exec-${i}`));
        req.event(EVENT.POOL_CHECKOUT, i + 1, pool('orders-db-pool', 8));
        req.child('InventoryCache.reserve', { at: 10 + i }).event(EVENT.LOCK_WAIT, 10.1 + i, lock('InventoryCache.monitor', 'monitor'));
      }
      for (let i = 10; i <= 45; i++) {
        const req = request(b, `get-order-${i}`, orders, 'GET /orders/{id}', 30 + i, thread(100 + i, `http-nio-8080-exec-${i}`));
        req.event(EVENT.POOL_WAIT, 30.5 + i, pool('orders-db-pool', 8));
      }
    },
    expect: [active(['InventoryCache.monitor', 'orders-db-pool'], ['orders'], 9, 36)],
  },
  {
    file: '06-goroutine-channel-ring.json',
    title: 'Goroutines in a channel ring',
    description:
      'In `pipeline` (Go), five stage goroutines g1-g5 pass work round a ring of unbuffered channels, and each is stuck sending to the next, which is itself stuck sending: g1 waits for g2, ..., g5 for g1 (`task.wait`, with `task.id` on the events too). The main goroutine waits for all five (`task.wait` mode all, and its open child spans): it is a victim, not core.',
    build(b) {
      const pipe = b.resource('pipeline', 'pipeline-0', go);
      const main = b.trace('pipeline-run').root('pipeline.Run', { resource: pipe, at: 0, attrs: task('main') });
      const gs = ['g1', 'g2', 'g3', 'g4', 'g5'];
      gs.forEach((g, i) => {
        const stage = main.child(`stage ${g}`, { at: 1 + i, attrs: task(g) });
        stage.event(EVENT.TASK_WAIT, 10 + i, { [ATTR.TASK_ID]: g, ...waitOn([gs[(i + 1) % gs.length]]) });
      });
      main.event(EVENT.TASK_WAIT, 20, waitOn(gs, 'all'));
    },
    expect: [active([], ['pipeline'], 5, 1)],
  },
  {
    file: '07-sidecar-retry-chain.json',
    title: 'A sidecar retry chain',
    description:
      'The `checkout` handler (thread 201) locks `cart/991` and calls `inventory` through its sidecar `inventory-envoy` (proxy spans, `component=proxy`, no task ids: each proxy span is its own task). The proxy\'s first attempt timed out after 1 s and its CLIENT span ended, but the inventory handler it reached (thread 301) is still running: it holds `stock/sku-5` and calls back `checkout`, whose handler (thread 202) waits for `cart/991`. The retry (`http.request.resend_count` 1) reaches a second inventory handler (thread 302), which waits for `stock/sku-5`. Chain: checkout/201 → proxy ingress span → retry CLIENT span → inventory/302 → (lock holder) inventory/301 → (server child) checkout/202 → (lock holder) checkout/201: 6 tasks.',
    build(b) {
      const checkout = b.resource('checkout', 'checkout-84c6d9f7b-p9x2l', java);
      const envoy = b.resource('inventory-envoy', 'inventory-5f6b8c7d9-k3j7w', { 'proxy.kind': 'envoy' }, 'envoy');
      const inventory = b.resource('inventory', 'inventory-5f6b8c7d9-k3j7w', java);
      const proxy = { [ATTR.COMPONENT]: PROXY_COMPONENT };
      const root = request(b, 'checkout-cart-991', checkout, 'POST /checkout', 0, thread(201, 'http-nio-8080-exec-11'));
      root.event(EVENT.LOCK_ACQUIRE, 3, lock('cart/991', 'row'));
      const client = root.child('inventory.v1.Inventory/Reserve', { kind: SpanKind.CLIENT, at: 10, attrs: { [RPC_METHOD]: 'inventory.v1.Inventory/Reserve' } });
      client.event(EVENT.RPC_WAIT, 10.05, { [ATTR.RPC_PEER_SERVICE]: 'inventory' });
      const ingress = client.child('ingress inventory.v1.Inventory/Reserve', { kind: SpanKind.SERVER, at: 11, resource: envoy, attrs: proxy });
      const first = ingress.child('router inventory egress', { kind: SpanKind.CLIENT, at: 11.5, attrs: proxy });
      const h1 = first.child('inventory.v1.Inventory/Reserve', { kind: SpanKind.SERVER, at: 12, resource: inventory, attrs: thread(301, 'grpc-default-executor-1') });
      h1.event(EVENT.LOCK_ACQUIRE, 13, lock('stock/sku-5', 'row'));
      const back = rpc(h1, checkout, 'checkout.v1.Checkout/OnReserved', 20, thread(202, 'grpc-default-executor-4'));
      back.server.event(EVENT.LOCK_WAIT, 22, lock('cart/991', 'row'));
      first.end(1011.5, 'upstream request timeout');
      const retry = ingress.child('router inventory egress', { kind: SpanKind.CLIENT, at: 1012, attrs: { ...proxy, [ATTR.HTTP_RESEND_COUNT]: 1 } });
      const h2 = retry.child('inventory.v1.Inventory/Reserve', { kind: SpanKind.SERVER, at: 1013, resource: inventory, attrs: thread(302, 'grpc-default-executor-2') });
      h2.event(EVENT.LOCK_WAIT, 1014, lock('stock/sku-5', 'row'));
    },
    expect: [active(['cart/991', 'stock/sku-5'], ['checkout', 'inventory', 'inventory-envoy'], 6)],
  },
  {
    file: '08-cert-wait-chain.json',
    title: 'A certificate-wait chain between a data plane and a control plane',
    description:
      'In `dataplane`, the config watcher (task `config-watcher`) holds `config-lock` while it waits for its workload certificate (`cert.wait cert.id=spiffe://mesh/dp-1 cert.issuer=controlplane`). In `controlplane`, the signer (task `ca-signer-2`) is issuing that certificate (`cert.issue`) and first pushes the new config to the data plane and waits for the ack (an RPC); the data plane\'s ack handler (task `xds-ack-1`) waits for `config-lock`. Chain: config-watcher → (issuer) ca-signer-2 → (server child) xds-ack-1 → (lock holder) config-watcher.',
    build(b) {
      const dp = b.resource('dataplane', 'dp-1', go);
      const cp = b.resource('controlplane', 'cp-0', go);
      const cert = 'spiffe://mesh/dp-1';
      const watcher = b.trace('config-apply').root('ConfigWatcher.apply', { resource: dp, at: 0, attrs: task('config-watcher') });
      watcher.event(EVENT.LOCK_ACQUIRE, 1, lock('config-lock', 'mutex'));
      watcher.event(EVENT.CERT_WAIT, 5, { [ATTR.CERT_ID]: cert, [ATTR.CERT_ISSUER]: 'controlplane' });
      const sign = b.trace('sign-dp-1').root('CertificateAuthority.SignWorkload', { resource: cp, at: 3, attrs: task('ca-signer-2') });
      sign.event(EVENT.CERT_ISSUE, 3.5, { [ATTR.CERT_ID]: cert });
      const ack = rpc(sign, dp, 'xds.v3.AggregatedDiscoveryService/Ack', 6, task('xds-ack-1'));
      ack.server.event(EVENT.LOCK_WAIT, 7.5, lock('config-lock', 'mutex'));
    },
    expect: [active(['config-lock', 'spiffe://mesh/dp-1'], ['controlplane', 'dataplane'], 3)],
  },
  {
    file: '09-session-lock-ring.json',
    title: 'An 8-session lock ring',
    description:
      'In `app`, eight database sessions (tasks `s1`-`s8`, PostgreSQL-style) each update one row and then the next: session i holds `row/i` and waits for `row/i+1`, and `s8` waits for `row/1`. A ring of 8.',
    build(b) {
      const app = b.resource('app', 'app-0', java);
      for (let i = 1; i <= 8; i++) {
        const tx = b.trace(`session-${i}`).root('UPDATE accounts', { resource: app, kind: SpanKind.CLIENT, at: i, attrs: task(`s${i}`, { 'db.system.name': 'postgresql' }) });
        tx.event(EVENT.LOCK_ACQUIRE, i + 0.5, lock(`row/${i}`, 'row'));
        tx.event(EVENT.LOCK_WAIT, 20 + i, lock(`row/${(i % 8) + 1}`, 'row'));
      }
    },
    expect: [active(['row/1', 'row/2', 'row/3', 'row/4', 'row/5', 'row/6', 'row/7', 'row/8'], ['app'], 8)],
  },
  {
    file: '10-resolved-by-timeout.json',
    title: 'An AB-BA deadlock broken by a lock timeout',
    description:
      'The shape of scenario 1 between `payments` and `ledger`, recorded to the end. Payments thread 51 locks `pg/payments/17` and calls `ledger`, whose handler (thread 61) waits for `pg/ledger/88`; ledger thread 62 holds `pg/ledger/88` and calls `payments`, whose handler (thread 52) waits for `pg/payments/17`: the cycle forms at 25 ms. At 5025 ms (5 s later) the payments handler gives up (`lock.timeout`) and its span ends in error; ledger 62 gets the error reply, releases `pg/ledger/88` and ends; ledger 61 acquires and releases it; payments 51 gets its reply, releases `pg/payments/17`, and every span ends. A resolved deadlock that lasted 5 s; nothing is active.',
    build(b) {
      const payments = b.resource('payments', 'payments-0', java);
      const ledger = b.resource('ledger', 'ledger-0', java);
      const [pay, led] = abBaThroughRpc(
        b,
        { resource: payments, trace: 'capture-payment-17', route: 'POST /payments/{id}/capture', at: 0, runner: thread(51, 'http-nio-8080-exec-5'), row: 'pg/payments/17', method: 'ledger.v1.Ledger/Post', handler: thread(61, 'grpc-default-executor-2') },
        { resource: ledger, trace: 'close-ledger-88', route: 'POST /ledger/{id}/close', at: 1, runner: thread(62, 'http-nio-8081-exec-3'), row: 'pg/ledger/88', method: 'payments.v1.Payments/Settle', handler: thread(52, 'grpc-default-executor-6') },
      );
      const [capture, post, close, settle] = [pay.req, pay, led.req, led];

      // The break: a 5 s lock timeout in payments, then everything unwinds.
      settle.server.event(EVENT.LOCK_TIMEOUT, 5025, lock('pg/payments/17', 'row')).end(5026, 'lock wait timeout exceeded');
      settle.client.event(EVENT.RPC_DONE, 5027).end(5027, 'ABORTED');
      close.event(EVENT.LOCK_RELEASE, 5029, lock('pg/ledger/88')).end(5030, 'rolled back');
      post.server.event(EVENT.LOCK_ACQUIRE, 5029.2, lock('pg/ledger/88', 'row'));
      post.server.event(EVENT.LOCK_RELEASE, 5035, lock('pg/ledger/88')).end(5036);
      post.client.event(EVENT.RPC_DONE, 5037).end(5037);
      capture.event(EVENT.LOCK_RELEASE, 5040, lock('pg/payments/17')).end(5041);
    },
    expect: [resolved(['pg/ledger/88', 'pg/payments/17'], ['ledger', 'payments'], 4)],
  },
  {
    file: '11-lock-order-inversion.json',
    title: 'A lock-order inversion that never overlapped',
    description:
      'In `accounts`, a transfer from account 1 to 2 (thread 71) locks `accounts/1` then, while holding it, `accounts/2`; half a second later a transfer from 2 to 1 (thread 72) locks `accounts/2` then `accounts/1`. They never overlapped and every span ended, so nothing deadlocked, but the opposite orders can deadlock on another day: a potential deadlock.',
    build(b) {
      const accounts = b.resource('accounts', 'accounts-0', java);
      const pairs: [number, string, string, number][] = [
        [71, 'accounts/1', 'accounts/2', 0],
        [72, 'accounts/2', 'accounts/1', 500],
      ];
      for (const [tid, first, then, at] of pairs) {
        const tx = request(b, `transfer-${tid}`, accounts, 'POST /transfers', at, thread(tid, `http-nio-8080-exec-${tid - 70}`));
        tx.event(EVENT.LOCK_ACQUIRE, at + 1, lock(first, 'row'));
        tx.event(EVENT.LOCK_ACQUIRE, at + 2, lock(then, 'row'));
        tx.event(EVENT.LOCK_RELEASE, at + 8, lock(then));
        tx.event(EVENT.LOCK_RELEASE, at + 9, lock(first)).end(at + 10);
      }
    },
    expect: [potential(['accounts/1', 'accounts/2'], ['accounts'], 2)],
  },
  {
    file: '12-reordered-duplicated.json',
    title: 'Scenario 1, reordered and duplicated',
    description:
      'The spans of scenario 1 delivered out of order: every span twice, plus a stale earlier snapshot of each (the same span with its last event not yet recorded), all shuffled. The result must not depend on arrival order: the same one finding as scenario 1.',
    build(b) {
      crossServiceAbBa(b);
      const versions: SpanVersion[] = [];
      for (const span of b.allSpans()) {
        const last = span.events[span.events.length - 1];
        // A strict prefix of the final events, so any "latest snapshot wins" rule picks the final one.
        versions.push({ span }, { span }, { span, upTo: last ? Math.max(span.startAt, last.at - 0.01) : span.startAt });
      }
      return shuffled(versions, b.name);
    },
    expect: [active(['orders-db/orders/42', 'orders-db/invoices/7'], ['orders', 'billing'], 4)],
  },
  {
    file: 'trap-running-holder.json',
    title: 'Trap: contention whose holder is running',
    description:
      'In `search`, the index refresher (thread 1) holds `index/products` and is busy merging segments: it waits for nothing. Three search requests (threads 2-4) wait for the lock. Contention, not a deadlock: the holder can go on.',
    build(b) {
      const search = b.resource('search', 'search-0', java);
      const refresh = b.trace('refresh').root('IndexRefresher.refresh', { resource: search, at: 0, attrs: thread(1, 'index-refresher') });
      refresh.event(EVENT.LOCK_ACQUIRE, 1, lock('index/products', 'rwlock'));
      refresh.child('Segment.merge', { at: 2 }).end(40);
      refresh.child('Segment.merge', { at: 41 });
      for (let t = 2; t <= 4; t++) {
        request(b, `search-${t}`, search, 'GET /search', 3 + t, thread(t, `http-nio-8080-exec-${t}`)).event(EVENT.LOCK_WAIT, 4 + t, lock('index/products', 'rwlock'));
      }
    },
    expect: [],
  },
  {
    file: 'trap-detached-child.json',
    title: 'Trap: a detached child waiting on its parent\'s lock',
    description:
      'In `notifications` (Node.js), the request flow `req-1` holds the advisory lock `redis-lock/user-55` and fires off an audit write as a detached child span (`task.detached=true`, task `async-7`), which waits for the same lock. The parent does not wait for a detached child, so it finishes and releases the lock: no deadlock. (Were the child not detached, the parent would wait for it and it would be one.)',
    build(b) {
      const notif = b.resource('notifications', 'notifications-0', node);
      const req = request(b, 'notify-user-55', notif, 'POST /notify', 0, task('req-1'));
      req.event(EVENT.LOCK_ACQUIRE, 1, lock('redis-lock/user-55', 'advisory'));
      const audit = req.child('audit.write', { at: 3, attrs: task('async-7', { [ATTR.TASK_DETACHED]: true }) });
      audit.event(EVENT.LOCK_WAIT, 3.1, lock('redis-lock/user-55', 'advisory'));
    },
    expect: [],
  },
  {
    file: 'trap-pool-holder-can-finish.json',
    title: 'Trap: a pool with a holder that can finish',
    description:
      'In `reports`, the pool `reports-db-pool` has 2 connections. Thread 11 holds one and waits for `ReportCache.monitor`; thread 12 holds the monitor and waits for a connection. That would be a knot, but the other connection is held by thread 13, which is rendering a PDF and waits for nothing: it will return its connection, so nobody is stuck for good.',
    build(b) {
      const reports = b.resource('reports', 'reports-0', java);
      const h1 = request(b, 'report-1', reports, 'GET /reports/{id}', 0, thread(11, 'http-nio-8080-exec-1'));
      h1.event(EVENT.POOL_CHECKOUT, 1, pool('reports-db-pool', 2));
      const w = request(b, 'rebuild', reports, 'POST /reports/rebuild', 2, thread(12, 'http-nio-8080-exec-2'));
      w.event(EVENT.LOCK_ACQUIRE, 3, lock('ReportCache.monitor', 'monitor'));
      const h2 = request(b, 'report-2-pdf', reports, 'GET /reports/{id}/pdf', 4, thread(13, 'http-nio-8080-exec-3'));
      h2.event(EVENT.POOL_CHECKOUT, 5, pool('reports-db-pool', 2));
      h1.child('ReportCache.get', { at: 6 }).event(EVENT.LOCK_WAIT, 6.1, lock('ReportCache.monitor', 'monitor'));
      w.event(EVENT.POOL_WAIT, 7, pool('reports-db-pool', 2));
      h2.child('PdfRenderer.render', { at: 8 });
    },
    expect: [],
  },
  {
    file: 'trap-released-lock.json',
    title: 'Trap: a released lock',
    description:
      'In `ledger`, thread 1 locked `ledger/accounts/9` and released it (the release is recorded in a nested span, delivered first in the file), and now waits for `ledger/journal`, held by thread 3. Thread 3 waits for `ledger/accounts/9`, which thread 2 acquired after thread 1\'s release and holds while it runs. Everyone waits on running thread 2: no deadlock. Were the release ignored, threads 1 and 3 would form a cycle.',
    build(b) {
      const ledger = b.resource('ledger', 'ledger-0', java);
      const t1 = request(b, 'post-journal', ledger, 'POST /journal/post', 0, thread(1, 'http-nio-8080-exec-1'));
      t1.event(EVENT.LOCK_ACQUIRE, 1, lock('ledger/accounts/9', 'row'));
      const close = t1.child('AccountLock.close', { at: 8 });
      close.event(EVENT.LOCK_RELEASE, 10, lock('ledger/accounts/9')).end(10.5);
      const t3 = request(b, 'rotate-journal', ledger, 'POST /journal/rotate', 1.5, thread(3, 'http-nio-8080-exec-3'));
      t3.event(EVENT.LOCK_ACQUIRE, 2, lock('ledger/journal', 'mutex'));
      const t2 = request(b, 'adjust-account-9', ledger, 'POST /accounts/{id}/adjust', 2, thread(2, 'http-nio-8080-exec-2'));
      t2.event(EVENT.LOCK_WAIT, 5, lock('ledger/accounts/9', 'row'));
      t2.event(EVENT.LOCK_ACQUIRE, 11, lock('ledger/accounts/9', 'row'));
      t3.event(EVENT.LOCK_WAIT, 12, lock('ledger/accounts/9', 'row'));
      t1.event(EVENT.LOCK_WAIT, 20, lock('ledger/journal', 'mutex'));
      // The release arrives before the acquire it ends.
      return [{ span: close }, { span: t1 }, { span: t2 }, { span: t3 }];
    },
    expect: [],
  },
  {
    file: 'trap-stale-snapshot.json',
    title: 'Trap: a stale snapshot',
    description:
      'In `exporter` (Go), worker-1 holds `report-lock` and, in a nested span, waited for worker-2 (`task.wait`) until it resumed at 30 ms; that span ended. Worker-2 now waits for `report-lock` while worker-1 runs. The file carries, after the ended span, a stale partial snapshot of it taken at 15 ms, with the wait still open. Taken as current it would close a cycle; an ended span replaces every snapshot of itself, so there is none.',
    build(b) {
      const exp = b.resource('exporter', 'exporter-0', go);
      const w1 = b.trace('export-job').root('ExportJob.run', { resource: exp, at: 0, attrs: task('worker-1') });
      w1.event(EVENT.LOCK_ACQUIRE, 1, lock('report-lock', 'mutex'));
      const join = w1.child('await shard export', { at: 10 });
      join.event(EVENT.TASK_WAIT, 10.1, waitOn(['worker-2'])).event(EVENT.TASK_RESUME, 30).end(31);
      const w2 = b.trace('shard-export').root('ShardExport.run', { resource: exp, at: 5, attrs: task('worker-2') });
      w2.event(EVENT.LOCK_WAIT, 50, lock('report-lock', 'mutex'));
      return [{ span: w1 }, { span: join }, { span: w2 }, { span: join, upTo: 15 }];
    },
    expect: [],
  },
];

/** The generated text of every file of the scenario folder, by file name. */
export function generateFixtures(): Record<string, string> {
  const out: Record<string, string> = {};
  const expectations: Record<string, ExpectedFinding[]> = {};
  for (const s of scenarios) {
    const b = new FixtureBuilder(s.file.replace(/\.json$/, ''));
    const versions = s.build(b) ?? b.finalVersions();
    out[s.file] = JSON.stringify(b.otlp(versions), null, 2) + '\n';
    expectations[s.file] = s.expect;
  }
  out[EXPECTATIONS_FILE] = JSON.stringify(expectations, null, 2) + '\n';
  out['README.md'] = readme();
  return out;
}

/** The folder's README: one section per scenario. */
function readme(): string {
  const lines = [
    '# Scenario fixtures',
    '',
    'Recorded spans of real deadlock incidents, and traps that must not be reported, as plain OTLP JSON',
    '(`{"resourceSpans": [...]}`). Open spans are partial-span snapshots (`endTimeUnixNano` "0",',
    '`span.partial = true`). `../scenario-expectations.json` lists, for each file, the findings the engine must',
    'report: kind, state, sorted resources and services, the number of core tasks and of victims. Traps',
    'expect none. Replay one with `npx waitgraph analyze test/fixtures/scenarios/<file>`.',
    '',
    'Generated by `npx tsx scripts/gen-fixtures.ts` (edit the script, not the files); `--check` tells',
    'whether the files are up to date.',
    '',
  ];
  for (const s of scenarios) {
    const found = s.expect.length === 0 ? 'expect: nothing' : `expect: ${s.expect.map(summary).join('; ')}`;
    lines.push(`## \`${s.file}\`: ${s.title}`, '', s.description, '', `*${found}.*`, '');
  }
  return lines.join('\n');
}

function summary(f: ExpectedFinding): string {
  const head = f.state ? `${f.state} ${f.kind}` : f.kind;
  const victims = f.victims ? `, ${f.victims} victims` : '';
  return `${head} of ${f.coreTasks} task${f.coreTasks === 1 ? '' : 's'}${victims}`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeOrCheck(generateFixtures(), SCENARIO_DIR, 'test/fixtures/scenarios/', 'npx tsx scripts/gen-fixtures.ts');
}
