/**
 * The OTLP/HTTP receiver, on node:http alone: `POST /v1/traces` and `POST /v1/logs` in the OTLP/HTTP way
 * (protobuf or JSON, gzip or not), so a Collector's `otlphttp` exporter or an SDK can send to it directly;
 * and, from the same server, `GET /metrics` (Prometheus) and `GET /healthz`.
 *
 * It does not decode: it hands the raw (inflated) body to the caller's `handle`, which throws a `bad-input`
 * WaitgraphError for a payload it cannot use. Answers follow the OTLP/HTTP specification:
 * - 200 with an empty ExportServiceResponse (`{}` for JSON, an empty body for protobuf) once `handle`
 *   resolves;
 * - 400 for a payload `handle` rejects, 413 for a body over the limit (measured before and after
 *   inflating, so a gzip bomb is cut off), 415 for another Content-Type or Content-Encoding, all with a
 *   `google.rpc.Status` body (`{"code":3,"message":...}` in JSON, or its protobuf encoding) that says what
 *   is wrong; clients do not retry these;
 * - 503 while not ready, or for a retriable failure of `handle`, with Retry-After; clients retry these.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { WaitgraphError } from '../errors.js';
import { stderrLogger, type Logger } from './log.js';
import type { BadInputReason, ProcessorMetrics } from './metrics.js';

const gunzipAsync = promisify(gunzip);

/** The OTLP signals the receiver takes, by path. */
export type OtlpSignal = 'traces' | 'logs';
/** How a body is encoded. */
export type OtlpContentType = 'json' | 'proto';

/** Health as `/healthz` reports it. */
export interface Health {
  /** False answers 503. */
  ready: boolean;
  /** Extra fields for the JSON body, e.g. `{ tasks: 12, kafka: 'connected' }`. */
  details?: Record<string, unknown>;
}

/** Options of `OtlpHttpReceiver`. */
export interface OtlpHttpReceiverOptions {
  /**
   * Takes one export request's body. Throws a `bad-input` WaitgraphError for an unusable payload. Without
   * it the server has no `/v1/traces` and `/v1/logs`, only `/metrics` and `/healthz` (a scale-out stage).
   */
  handle?: (signal: OtlpSignal, body: Uint8Array, contentType: OtlpContentType) => Promise<void>;
  /** Interface to listen on. Default `127.0.0.1`. */
  host?: string;
  /** Port; 0 picks a free one. Default 4318, OTLP/HTTP's. */
  port?: number;
  /** Largest body taken, in bytes, both as sent and inflated. Default 16 MiB. */
  maxBodyBytes?: number;
  /** Metrics served at `/metrics`; rejected requests are counted in its `bad_input_total`. Default none (404). */
  metrics?: ProcessorMetrics;
  /** Health for `/healthz`. Default: ready while the server listens. */
  health?: () => Health;
  /**
   * Whether exports are taken now; when not, they are answered 503 with Retry-After. Default: what
   * `health()` says. (A processor warming up takes input while `/healthz` still says it is not ready.)
   */
  accepting?: () => boolean;
  /** Logger. Default JSON lines on stderr. */
  logger?: Logger;
}

/** `google.rpc.Code` values used in error answers. */
const RpcCode = { INVALID_ARGUMENT: 3, RESOURCE_EXHAUSTED: 8, INTERNAL: 13, UNAVAILABLE: 14 } as const;

/** A request that is answered with an error status. */
class HttpFailure extends Error {
  constructor(
    readonly status: number,
    readonly rpcCode: number,
    message: string,
    readonly reason?: BadInputReason,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

type Route = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

/** An OTLP/HTTP receiver with `/metrics` and `/healthz`. */
export class OtlpHttpReceiver {
  private readonly handle: OtlpHttpReceiverOptions['handle'];
  private readonly host: string;
  private readonly port: number;
  private readonly maxBodyBytes: number;
  private readonly metrics: ProcessorMetrics | undefined;
  private readonly health: () => Health;
  private readonly accepting: () => boolean;
  private readonly logger: Logger;
  private readonly server: Server;
  /** Method and path to handler: the whole surface of the server. */
  private readonly routes: Record<string, Record<string, Route>>;
  private listening = false;
  private shutdownPromise: Promise<void> | undefined;

  constructor(options: OtlpHttpReceiverOptions) {
    if (options.handle !== undefined && typeof options.handle !== 'function') throw new WaitgraphError('bad-config', 'OtlpHttpReceiver: handle must be a function');
    const handle = options.handle;
    this.handle = handle;
    this.host = options.host ?? '127.0.0.1';
    this.port = options.port ?? 4318;
    this.maxBodyBytes = options.maxBodyBytes ?? 16 * 1024 * 1024;
    if (!Number.isInteger(this.port) || this.port < 0 || this.port > 65535) {
      throw new WaitgraphError('bad-config', `OtlpHttpReceiver: port must be 0..65535, not ${this.port}`);
    }
    if (!Number.isInteger(this.maxBodyBytes) || this.maxBodyBytes < 1) {
      throw new WaitgraphError('bad-config', `OtlpHttpReceiver: maxBodyBytes must be a positive integer, not ${this.maxBodyBytes}`);
    }
    this.metrics = options.metrics;
    this.health = options.health ?? (() => ({ ready: this.listening }));
    this.accepting = options.accepting ?? (() => this.health().ready);
    this.logger = options.logger ?? stderrLogger;
    this.routes = {
      ...(handle === undefined
        ? {}
        : {
            '/v1/traces': { POST: (req: IncomingMessage, res: ServerResponse) => this.export('traces', req, res) },
            '/v1/logs': { POST: (req: IncomingMessage, res: ServerResponse) => this.export('logs', req, res) },
          }),
      '/metrics': { GET: (_req, res) => this.serveMetrics(res) },
      '/healthz': { GET: (_req, res) => this.serveHealth(res) },
    };
    this.server = createServer((req, res) => void this.route(req, res));
  }

  /** Starts listening; resolves with the bound address (the port matters when 0 was asked). */
  async start(): Promise<{ host: string; port: number; url: string }> {
    if (this.listening || this.shutdownPromise) throw new WaitgraphError('bad-usage', 'OtlpHttpReceiver: start() called twice');
    await new Promise<void>((ok, fail) => {
      this.server.once('error', (err) => fail(new WaitgraphError('io', `OtlpHttpReceiver: cannot listen on ${this.host}:${this.port}: ${err.message}`, { cause: err })));
      this.server.listen(this.port, this.host, () => ok());
    });
    this.listening = true;
    return this.address();
  }

  /** Where the server listens. */
  address(): { host: string; port: number; url: string } {
    const a = this.server.address() as AddressInfo | null;
    if (!a) throw new WaitgraphError('bad-usage', 'OtlpHttpReceiver: not listening');
    const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
    return { host: a.address, port: a.port, url: `http://${host}:${a.port}` };
  }

  /** Stops taking connections, lets requests in progress finish (up to `graceMs`, default 5 s). Idempotent. */
  shutdown(graceMs = 5000): Promise<void> {
    this.shutdownPromise ??= new Promise<void>((ok) => {
      this.listening = false;
      if (!this.server.listening) return ok();
      const force = setTimeout(() => this.server.closeAllConnections(), graceMs).unref();
      this.server.close(() => {
        clearTimeout(force);
        ok();
      });
      this.server.closeIdleConnections();
    });
    return this.shutdownPromise;
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?', 1)[0]!;
    const methods = this.routes[path];
    try {
      if (!methods) throw new HttpFailure(404, RpcCode.INVALID_ARGUMENT, `no such path: ${path}`);
      const route = methods[req.method ?? ''];
      if (!route) throw new HttpFailure(405, RpcCode.INVALID_ARGUMENT, `${req.method} not allowed on ${path}`, undefined, { allow: Object.keys(methods).join(', ') });
      await route(req, res);
    } catch (err) {
      this.fail(req, res, err);
    }
  }

  private async export(signal: OtlpSignal, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const contentType = parseContentType(req.headers['content-type']);
    if (!this.accepting()) {
      req.resume();
      throw new HttpFailure(503, RpcCode.UNAVAILABLE, 'not ready', undefined, { 'retry-after': '1' });
    }
    const body = await this.readBody(req);
    try {
      await this.handle!(signal, body, contentType); // routed only with a handle
    } catch (err) {
      if (err instanceof WaitgraphError && err.code === 'bad-input') {
        throw new HttpFailure(400, RpcCode.INVALID_ARGUMENT, err.message, 'decode');
      }
      if (err instanceof WaitgraphError && err.retriable) {
        throw new HttpFailure(503, RpcCode.UNAVAILABLE, err.message, undefined, { 'retry-after': '1' });
      }
      throw err;
    }
    if (contentType === 'json') send(res, 200, 'application/json', '{}');
    else send(res, 200, 'application/x-protobuf', new Uint8Array(0));
  }

  /** Reads the body, inflating gzip, within the size limit. */
  private async readBody(req: IncomingMessage): Promise<Uint8Array> {
    const encoding = (req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
    if (encoding !== 'gzip' && encoding !== 'identity') {
      req.resume();
      throw new HttpFailure(415, RpcCode.INVALID_ARGUMENT, `Content-Encoding ${encoding} not supported (use gzip or none)`, 'bad_encoding');
    }
    const declared = Number(req.headers['content-length']);
    if (declared > this.maxBodyBytes) throw this.tooLarge(req, `${declared} bytes`);
    const raw = await new Promise<Buffer>((ok, fail) => {
      const chunks: Buffer[] = [];
      let size = 0;
      // Listeners, not for-await: leaving a for-await loop early would destroy the socket before the answer.
      const onData = (chunk: Buffer) => {
        size += chunk.length;
        if (size <= this.maxBodyBytes) return void chunks.push(chunk);
        req.off('data', onData);
        fail(this.tooLarge(req, `over ${this.maxBodyBytes} bytes`));
      };
      req.on('data', onData);
      req.once('end', () => ok(Buffer.concat(chunks, size)));
      req.once('error', (err) => fail(new HttpFailure(400, RpcCode.INVALID_ARGUMENT, `the request broke off: ${err.message}`)));
    });
    if (encoding === 'identity') return raw;
    try {
      return await gunzipAsync(raw, { maxOutputLength: this.maxBodyBytes });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw this.tooLarge(req, `inflates to over ${this.maxBodyBytes} bytes`);
      throw new HttpFailure(400, RpcCode.INVALID_ARGUMENT, `the gzip body does not inflate: ${(err as Error).message}`, 'bad_encoding');
    }
  }

  private tooLarge(req: IncomingMessage, what: string): HttpFailure {
    // The rest of the body is not read: the answer closes the connection instead.
    req.pause();
    return new HttpFailure(413, RpcCode.RESOURCE_EXHAUSTED, `body too large (${what}; the limit is ${this.maxBodyBytes} bytes)`, 'too_large', {
      connection: 'close',
    });
  }

  private async serveMetrics(res: ServerResponse): Promise<void> {
    if (!this.metrics) throw new HttpFailure(404, RpcCode.INVALID_ARGUMENT, 'no metrics configured');
    send(res, 200, this.metrics.contentType, await this.metrics.text());
  }

  private async serveHealth(res: ServerResponse): Promise<void> {
    const h = this.health();
    const body = { status: h.ready ? 'ok' : 'unavailable', ...h.details };
    send(res, h.ready ? 200 : 503, 'application/json', JSON.stringify(body));
  }

  private fail(req: IncomingMessage, res: ServerResponse, err: unknown): void {
    let failure: HttpFailure;
    if (err instanceof HttpFailure) {
      failure = err;
    } else if (err instanceof WaitgraphError && err.code === 'bad-input') {
      failure = new HttpFailure(400, RpcCode.INVALID_ARGUMENT, err.message, 'decode');
    } else {
      // A bug of the handler: say so, but do not hand out its details.
      this.logger.error('OtlpHttpReceiver: request failed', { path: req.url, error: err instanceof Error ? err.stack : String(err) });
      failure = new HttpFailure(500, RpcCode.INTERNAL, 'internal error');
    }
    if (failure.reason) this.metrics?.badInput.inc({ reason: failure.reason });
    if (res.headersSent) return void res.destroy();
    for (const [k, v] of Object.entries(failure.headers)) res.setHeader(k, v);
    // The error comes in the request's encoding when that is protobuf, else in JSON.
    if (req.method === 'POST' && isProtobuf(req.headers['content-type'])) {
      send(res, failure.status, 'application/x-protobuf', encodeStatus(failure.rpcCode, failure.message));
    } else {
      send(res, failure.status, 'application/json', JSON.stringify({ code: failure.rpcCode, message: failure.message }));
    }
    if (failure.headers.connection === 'close') res.once('finish', () => req.destroy());
  }
}

function parseContentType(header: string | undefined): OtlpContentType {
  const type = (header ?? '').split(';', 1)[0]!.trim().toLowerCase();
  if (type === 'application/x-protobuf') return 'proto';
  if (type === 'application/json') return 'json';
  throw new HttpFailure(
    415,
    RpcCode.INVALID_ARGUMENT,
    `Content-Type ${type || '(none)'} not supported (use application/x-protobuf or application/json)`,
    'unsupported_media_type',
  );
}

function isProtobuf(header: string | undefined): boolean {
  return (header ?? '').split(';', 1)[0]!.trim().toLowerCase() === 'application/x-protobuf';
}

function send(res: ServerResponse, status: number, contentType: string, body: string | Uint8Array): void {
  res.statusCode = status;
  res.setHeader('content-type', contentType);
  res.setHeader('content-length', Buffer.byteLength(body));
  res.end(body);
}

/** The protobuf encoding of `google.rpc.Status { int32 code = 1; string message = 2; }`. */
export function encodeStatus(code: number, message: string): Uint8Array {
  const text = Buffer.from(message, 'utf8');
  return Buffer.concat([Buffer.from([0x08]), varint(code), Buffer.from([0x12]), varint(text.length), text]);
}

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}
