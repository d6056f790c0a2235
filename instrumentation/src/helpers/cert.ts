/**
 * Certificate (or secret) waits and issuing: `certWait()` wraps the code that waits for a certificate
 * another task or service issues; `certIssue()` wraps the code that issues one. Both record on the span
 * active at the call and return exactly what the wrapped function returns.
 *
 * - `certWait`: `cert.wait` (`cert.id`, `cert.issuer`), then `cert.ready` when the certificate came, or
 *   `cert.timeout` when the wait failed or was given up. The waiter records `cert.ready` itself because
 *   the issuer's `cert.ready` is on another span, often in another service.
 * - `certIssue`: `cert.issue`, then `cert.ready` when issued. A failed issue records nothing more: the
 *   waiters are then really left waiting, and the open issue ends with its span.
 */
import { ATTR, EVENT } from '../../../schemas/index.js';
import { observe } from '../core/observe.js';
import { record, recordingSpan, withTask } from '../core/recorder.js';
import { currentTaskId } from '../core/task.js';

/** Waits for certificate `certId` (issued by the service `issuer`, when known) by running `fn`. */
export function certWait<T>(certId: string, issuer: string | undefined, fn: () => T | PromiseLike<T>): Promise<T> {
  const span = recordingSpan();
  if (span === undefined) return observe(fn, () => {});
  const task = currentTaskId();
  const attrs = issuer === undefined ? { [ATTR.CERT_ID]: certId } : { [ATTR.CERT_ID]: certId, [ATTR.CERT_ISSUER]: issuer };
  record(span, EVENT.CERT_WAIT, withTask(attrs, span, task));
  return observe(fn, (ok) => {
    if (ok) record(span, EVENT.CERT_READY, withTask({ [ATTR.CERT_ID]: certId }, span, task));
    else record(span, EVENT.CERT_TIMEOUT, withTask(attrs, span, task));
  });
}

/** Issues certificate `certId` by running `fn`. */
export function certIssue<T>(certId: string, fn: () => T | PromiseLike<T>): Promise<T> {
  const span = recordingSpan();
  if (span === undefined) return observe(fn, () => {});
  const task = currentTaskId();
  const attrs = { [ATTR.CERT_ID]: certId };
  record(span, EVENT.CERT_ISSUE, withTask(attrs, span, task));
  return observe(fn, (ok) => {
    if (ok) record(span, EVENT.CERT_READY, withTask(attrs, span, task));
  });
}
