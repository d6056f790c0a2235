/**
 * RPC waits for undici and Node's global `fetch`, recorded on the CLIENT spans that
 * `@opentelemetry/instrumentation-undici` creates:
 *
 *   new UndiciInstrumentation(waitgraphUndiciConfig({ ...yourConfig }))
 *
 * `rpc.wait` from its request hook, `rpc.done` from its response hook (the response headers arrived),
 * and, through undici's `undici:request:error` diagnostics channel, `rpc.timeout` when the request was
 * aborted or timed out, else `rpc.done`. The channel subscription is made once, when this function is
 * first called: before the instrumentation's own, so the event lands before it ends the span.
 */
import { subscribe } from 'node:diagnostics_channel';
import type { UndiciInstrumentationConfig, UndiciRequest } from '@opentelemetry/instrumentation-undici';
import { swallow } from '../core/recorder.js';
import { isAbandonment, rpcWaitOptions, RpcWait, type RpcWaitOptions } from './rpc-wait.js';

const waits = new WeakMap<object, RpcWait>();
let subscribed = false;

function onRequestError(message: unknown): void {
  try {
    const { request, error } = message as { request: object; error: unknown };
    const wait = waits.get(request);
    if (wait === undefined) return;
    if (isAbandonment(error)) wait.abandoned();
    else wait.done();
  } catch (err) {
    swallow('recording an undici request error', err);
  }
}

/**
 * `config` for `UndiciInstrumentation`, with hooks that record the RPC waits of outgoing calls added to
 * (and run after) its own `requestHook` and `responseHook`.
 */
export function waitgraphUndiciConfig<C extends UndiciInstrumentationConfig>(config?: C, options?: RpcWaitOptions): C {
  const o = rpcWaitOptions(options, 'waitgraphUndiciConfig');
  if (!subscribed) {
    subscribe('undici:request:error', onRequestError);
    subscribed = true;
  }
  const base = (config ?? {}) as C;
  const { requestHook, responseHook } = base;
  return {
    ...base,
    requestHook(span, request: UndiciRequest) {
      requestHook?.(span, request);
      const wait = RpcWait.start(span, { origin: request.origin, method: request.method, path: request.path }, o);
      if (wait !== undefined) waits.set(request, wait);
    },
    responseHook(span, info: { request: UndiciRequest; response: unknown }) {
      responseHook?.(span, info as never);
      waits.get(info.request)?.done();
    },
  };
}
