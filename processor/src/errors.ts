/** The processor's errors: the one error class of waitgraph, defined with the shared wire formats. */
export { ERROR_CODES, WaitgraphError } from '../../schemas/src/errors.js';
export type { ErrorCode, WaitgraphErrorOptions } from '../../schemas/src/errors.js';
