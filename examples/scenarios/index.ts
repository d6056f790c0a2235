/**
 * The four end-to-end scenarios, in the order the issue names them.
 */
export { certWait } from './cert-wait.js';
export { pgRowLocks, PG_SQLSTATES } from './pg-row-locks.js';
export { pool } from './pool.js';
export { sidecarRetry } from './sidecar-retry.js';
export type { DeadlockRun, DriveContext, ExpectedFinding, Scenario } from './scenario.js';

import { certWait } from './cert-wait.js';
import { pgRowLocks } from './pg-row-locks.js';
import { pool } from './pool.js';
import { sidecarRetry } from './sidecar-retry.js';

/** Every scenario. */
export const SCENARIOS = [pgRowLocks, pool, sidecarRetry, certWait];
