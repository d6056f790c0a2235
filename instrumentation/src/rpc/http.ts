/**
 * RPC waits for node:http / node:https client calls, recorded on the CLIENT spans that
 * `@opentelemetry/instrumentation-http` creates, through its request and response hooks:
 *
 *   new HttpInstrumentation(waitgraphHttpConfig({ ...yourConfig }))
 *
 * `rpc.wait` when the request is made, `rpc.done` when the response arrives or the request fails, and
 * `rpc.timeout` when the caller gave up: the request emitted `timeout`, or failed with an abort. Errors
 * are watched through `events.errorMonitor`, so an unhandled request error stays unhandled. Your own hooks
 * in the config still run, first.
 */
import { errorMonitor } from 'node:events';
import { ClientRequest, IncomingMessage } from 'node:http';
import type { Span } from '@opentelemetry/api';
import type { HttpInstrumentationConfig } from '@opentelemetry/instrumentation-http';
import { swallow } from '../core/recorder.js';
import { isAbandonment, rpcWaitOptions, RpcWait, type RpcWaitOptions } from './rpc-wait.js';

const waits = new WeakMap<Span, RpcWait>();

function target(request: ClientRequest) {
  const host = String(request.getHeader('host') ?? request.host);
  const protocol = (request as ClientRequest & { protocol?: string }).protocol ?? 'http:';
  return { origin: `${protocol}//${host}`, method: request.method, path: request.path };
}

function watch(span: Span, request: ClientRequest, options: RpcWaitOptions): void {
  const wait = RpcWait.start(span, target(request), options);
  if (wait === undefined) return;
  waits.set(span, wait);
  let timedOut = false;
  // listeners that change nothing: 'timeout' has no default action, errorMonitor does not handle errors
  request.once('timeout', () => (timedOut = true));
  request.on(errorMonitor, (err: unknown) => (timedOut || isAbandonment(err) ? wait.abandoned() : wait.done()));
  // closed with neither a response nor an error (both end the wait first): destroyed by the caller
  request.once('close', () => wait.abandoned());
}

/**
 * `config` for `HttpInstrumentation`, with hooks that record the RPC waits of outgoing calls added to
 * (and run after) its own `requestHook` and `responseHook`.
 */
export function waitgraphHttpConfig<C extends HttpInstrumentationConfig>(config?: C, options?: RpcWaitOptions): C {
  const o = rpcWaitOptions(options, 'waitgraphHttpConfig');
  const base = (config ?? {}) as C;
  const { requestHook, responseHook } = base;
  return {
    ...base,
    requestHook(span, request) {
      requestHook?.(span, request);
      try {
        if (request instanceof ClientRequest) watch(span, request, o);
      } catch (err) {
        swallow('watching an http request', err);
      }
    },
    responseHook(span, response) {
      responseHook?.(span, response);
      if (response instanceof IncomingMessage) waits.get(span)?.done();
    },
  };
}
