/**
 * waitgraph for Node.js services: instrumented locks, pools and joins that record the wait events of
 * the contract (`shared/spec/wait-events.md`) on the active span, wrappers for the libraries services
 * already use, RPC waits on HTTP client spans, and a span processor that exports snapshots of spans that
 * hang, so a deadlock shows while it lasts.
 */
export { configureWaitEvents, SCOPE_NAME, SCOPE_VERSION } from './src/core/recorder.js';
export type { EventRecords, WaitEventsOptions } from './src/core/recorder.js';
export { currentTaskId, runAsTask } from './src/core/task.js';
export { newTaskId } from './src/core/ids.js';
export { Mutex, MutexOptionsSchema } from './src/primitives/mutex.js';
export type { MutexOptions } from './src/primitives/mutex.js';
export { RWLock, RWLockOptionsSchema } from './src/primitives/rwlock.js';
export type { RWLockHold, RWLockOptions } from './src/primitives/rwlock.js';
export { Semaphore, SemaphoreOptionsSchema } from './src/primitives/semaphore.js';
export type { SemaphoreOptions } from './src/primitives/semaphore.js';
export type { AcquireOptions, Release } from './src/primitives/permits.js';
export { join } from './src/helpers/join.js';
export type { Branch, JoinMode, JoinOptions } from './src/helpers/join.js';
export { certIssue, certWait } from './src/helpers/cert.js';
export { detached } from './src/helpers/detached.js';
export type { DetachedOptions } from './src/helpers/detached.js';
export { snapshotOf, waitgraphSnapshots, WaitSnapshotOptionsSchema, WaitSnapshotSpanProcessor } from './src/snapshot/snapshot-processor.js';
export type { WaitSnapshotOptions } from './src/snapshot/snapshot-processor.js';
export {
  ASYNC_MUTEX_VERSIONS,
  AsyncMutexInstrumentation,
  AsyncMutexOptionsSchema,
  AsyncSemaphoreOptionsSchema,
  instrumentAsyncMutex,
  instrumentAsyncSemaphore,
} from './src/libs/async-mutex.js';
export type { AsyncMutexInstrumentationConfig, AsyncMutexOptions, AsyncSemaphoreOptions } from './src/libs/async-mutex.js';
export { GENERIC_POOL_VERSIONS, GenericPoolInstrumentation, GenericPoolOptionsSchema, instrumentGenericPool } from './src/libs/generic-pool.js';
export type { GenericPoolInstrumentationConfig, GenericPoolOptions } from './src/libs/generic-pool.js';
export { instrumentPgPool, PG_POOL_VERSIONS, PgPoolInstrumentation, PgPoolOptionsSchema, pgPoolName } from './src/libs/pg-pool.js';
export type { PgPoolInstrumentationConfig, PgPoolOptions } from './src/libs/pg-pool.js';
export { isAbandonment, RpcWait, RpcWaitOptionsSchema } from './src/rpc/rpc-wait.js';
export type { RpcTarget, RpcWaitOptions } from './src/rpc/rpc-wait.js';
export { waitgraphHttpConfig } from './src/rpc/http.js';
export { waitgraphUndiciConfig } from './src/rpc/undici.js';
