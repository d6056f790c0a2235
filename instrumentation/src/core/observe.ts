/**
 * Runs a function and tells a callback how it ended, without changing what the caller sees: the same
 * value, the same error (a synchronous throw becomes a rejection, as in an async function), and a
 * rejection the caller ignores is still reported as unhandled, because the caller gets a promise that
 * rejects exactly like the original.
 */

/** Calls `fn`, then `after(true)` when it fulfils or `after(false, error)` when it fails. */
export function observe<T>(fn: () => T | PromiseLike<T>, after: (ok: boolean, error?: unknown) => void): Promise<T> {
  let result: Promise<T>;
  try {
    result = Promise.resolve(fn());
  } catch (err) {
    after(false, err);
    return Promise.reject(err);
  }
  return result.then(
    (value) => {
      after(true);
      return value;
    },
    (err: unknown) => {
      after(false, err);
      throw err;
    },
  );
}
