/**
 * The one error class of waitgraph (processor and instrumentation). Failures sort into three kinds:
 * - retriable (broker, network): retry with backoff;
 * - poison input (`bad-input`): counted, logged once with a sample, sent to a dead-letter sink, never fatal;
 * - broken invariants (`internal`): a bug, fail loudly.
 */

/** Error codes. */
export const ERROR_CODES = ['bad-input', 'bad-usage', 'bad-config', 'io', 'broker', 'internal'] as const;
/** An error code. */
export type ErrorCode = (typeof ERROR_CODES)[number];

/** Options of a WaitgraphError. */
export interface WaitgraphErrorOptions {
  /** Whether trying again may succeed. Default: true for `io` and `broker`, false otherwise. */
  retriable?: boolean;
  /** The underlying error. */
  cause?: unknown;
}

/** The base error of waitgraph: a code, whether it is retriable, and its cause. */
export class WaitgraphError extends Error {
  /** What kind of failure this is. */
  readonly code: ErrorCode;
  /** Whether trying again may succeed. */
  readonly retriable: boolean;

  constructor(code: ErrorCode, message: string, options: WaitgraphErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'WaitgraphError';
    this.code = code;
    this.retriable = options.retriable ?? (code === 'io' || code === 'broker');
  }
}
