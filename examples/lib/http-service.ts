/**
 * The little HTTP framework of the example services: JSON in and out, routes with `:params`, a
 * `/healthz`, listening on 127.0.0.1 only, a ready line on stdout for whoever started the process, and a
 * clean stop on SIGTERM that flushes the spans. Also `callJson`, the services' outgoing call (fetch, so
 * the undici instrumentation makes the CLIENT span and waitgraph records its `rpc.wait`).
 *
 * Handlers run inside the SERVER span that the http instrumentation starts, so wait events they record
 * land on it (or on child spans they start).
 */
import http from 'node:http';
import { trace } from '@opentelemetry/api';
import type { AddressInfo } from 'node:net';
import type { Telemetry } from './telemetry.js';

/** A request as a handler sees it. */
export interface Request {
  method: string;
  path: string;
  params: Record<string, string>;
  query: URLSearchParams;
  body: unknown;
  /** Aborted when the caller goes away (the connection closed before the response was sent). */
  signal: AbortSignal;
}

/** A handler's answer: a status and a JSON body. */
export interface Reply {
  status: number;
  body: unknown;
}

/** A route handler. */
export type Handler = (req: Request) => Promise<Reply> | Reply;

/** An error a handler throws to answer with a given status (502 for a failed upstream, 503 for a timeout...). */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

interface Route {
  method: string;
  /** `/orders/:id/settle` */
  template: string;
  parts: string[];
  handler: Handler;
}

function match(route: Route, method: string, parts: string[]): Record<string, string> | undefined {
  if (route.method !== method || route.parts.length !== parts.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < parts.length; i++) {
    const want = route.parts[i]!;
    if (want.startsWith(':')) params[want.slice(1)] = decodeURIComponent(parts[i]!);
    else if (want !== parts[i]) return undefined;
  }
  return params;
}

async function readBody(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  if (chunks.length === 0) return undefined;
  const text = Buffer.concat(chunks).toString('utf8');
  return text.length === 0 ? undefined : JSON.parse(text);
}

/** Options of `serve`. */
export interface ServeOptions {
  /** The service name, for the ready line and logs. */
  name: string;
  /** The port on 127.0.0.1; 0 picks a free one. */
  port: number;
  /** `"METHOD /path/:param"` → handler. */
  routes: Record<string, Handler>;
  /** The SDK to flush on SIGTERM. */
  telemetry: Telemetry;
  /** Run when the service stops, before the spans are flushed (close pools...). */
  onStop?: () => Promise<void>;
  /** Turns what a handler threw into its answer. Default: an HttpError as it is, anything else a 500. */
  mapError?: (err: unknown) => HttpError;
}

/** A running service. */
export interface Service {
  url: string;
  stop(): Promise<void>;
}

/**
 * Serves `routes` on 127.0.0.1 and prints `{"ready":true,"service":...,"url":...}` on stdout once
 * listening (see `listen`).
 */
export async function serve(options: ServeOptions): Promise<Service> {
  const routes: Route[] = Object.entries(options.routes).map(([key, handler]) => {
    const [method, path] = key.split(' ');
    return { method: method!, template: path!, parts: path!.split('/').filter(Boolean), handler };
  });
  routes.push({ method: 'GET', template: '/healthz', parts: ['healthz'], handler: () => ({ status: 200, body: { ok: true } }) });

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const parts = url.pathname.split('/').filter(Boolean);
    const gone = new AbortController();
    // 'close' on the response before it finished: the caller hung up (a proxy's per-try timeout, say)
    res.once('close', () => {
      if (!res.writableFinished) gone.abort(new Error('the caller closed the connection'));
    });
    let reply: Reply;
    try {
      let found: { route: Route; params: Record<string, string> } | undefined;
      for (const route of routes) {
        const params = match(route, req.method ?? 'GET', parts);
        if (params) {
          found = { route, params };
          break;
        }
      }
      if (found) {
        // as web frameworks do: the SERVER span named after the route, so traces and alerts read well
        trace.getActiveSpan()?.updateName(`${found.route.method} ${found.route.template}`).setAttribute('http.route', found.route.template);
      }
      const body = await readBody(req);
      reply = found
        ? await found.route.handler({ method: req.method ?? 'GET', path: url.pathname, params: found.params, query: url.searchParams, body, signal: gone.signal })
        : { status: 404, body: { error: `no route ${req.method} ${url.pathname}` } };
    } catch (err) {
      const e = err instanceof HttpError ? err : (options.mapError?.(err) ?? new HttpError(500, (err as Error).message ?? String(err)));
      reply = { status: e.status, body: { error: e.message, ...e.details } };
    }
    if (res.destroyed) return;
    res.writeHead(reply.status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(reply.body));
  });
  return listen({ ...options, listener: server });
}

/** Options of `listen`. */
export interface ListenOptions {
  /** The service name, for the ready line. */
  name: string;
  /** The port on 127.0.0.1; 0 picks a free one. */
  port: number;
  /** The server, not yet listening. */
  listener: http.Server;
  /** The SDK to flush on SIGTERM. */
  telemetry: Telemetry;
  /** Run when the service stops, before the spans are flushed. */
  onStop?: () => Promise<void>;
}

/**
 * Listens on 127.0.0.1, prints the ready line, and stops on SIGTERM or SIGINT: the server closes,
 * `onStop` runs, the spans are flushed, the process exits.
 */
export async function listen(options: ListenOptions): Promise<Service> {
  const server = options.listener;
  // keep-alive connections of callers would hold `close()` up for their idle timeout
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, '127.0.0.1', () => resolve());
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      server.close();
      server.closeAllConnections();
      await options.onStop?.().catch(() => {});
      await options.telemetry.shutdown();
    })());
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.once(sig, () => void stop().finally(() => process.exit(0)));
  }
  process.stdout.write(JSON.stringify({ ready: true, service: options.name, url }) + '\n');
  return { url, stop };
}

/** What `callJson` got back. */
export interface CallResult {
  status: number;
  ok: boolean;
  body: unknown;
}

/**
 * Calls another service with fetch and parses its JSON answer. A non-2xx status is returned, not thrown;
 * a network error or an abort is thrown.
 */
export async function callJson(url: string, init: { method?: string; body?: unknown; signal?: AbortSignal } = {}): Promise<CallResult> {
  const res = await fetch(url, {
    method: init.method ?? 'POST',
    headers: init.body === undefined ? undefined : { 'content-type': 'application/json' },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
    signal: init.signal,
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = text.length ? JSON.parse(text) : undefined;
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, ok: res.ok, body };
}

/** Reads a required environment variable, or fails with its name. */
export function env(name: string): string;
/** Reads an environment variable, with a default. */
export function env(name: string, fallback: string): string;
export function env(name: string, fallback?: string): string {
  const v = process.env[name];
  if (v !== undefined && v !== '') return v;
  if (fallback !== undefined) return fallback;
  throw new Error(`the environment variable ${name} is required`);
}

/** Reads a whole number of milliseconds (or any count) from the environment. */
export function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a whole number >= 0, got ${raw}`);
  return n;
}
