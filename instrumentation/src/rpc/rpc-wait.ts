/**
 * The RPC wait of one outgoing call, recorded on its CLIENT span: `rpc.wait` when the request goes out,
 * then exactly one of `rpc.done` (a reply, or an error: the caller is no longer blocked) and
 * `rpc.timeout` (the caller gave up: an abort or a timeout). The server side needs nothing from here:
 * the callee's SERVER span is a child of this CLIENT span by ordinary context propagation, which is how
 * the detector follows the wait into the other service.
 */
import type { Attributes, Span } from '@opentelemetry/api';
import { Type, type Static } from '@sinclair/typebox';
import { ATTR, EVENT } from '../../../schemas/index.js';
import { checkOptions } from '../core/options.js';
import { record, swallow, withTask } from '../core/recorder.js';
import { currentTaskId } from '../core/task.js';

/** An outgoing call, as the option functions see it. */
export interface RpcTarget {
  /** `http://host:port` */
  origin: string;
  method: string;
  path: string;
}

/** Options of the RPC-wait hooks. */
export const RpcWaitOptionsSchema = Type.Object(
  {
    /** The callee's service name (`rpc.peer.service`) for a call, when known. Default: not recorded. */
    peerService: Type.Optional(Type.Unsafe<(target: RpcTarget) => string | undefined>(Type.Function([Type.Any()], Type.Any()))),
    /**
     * The `pool.name` of the callee's intake pool (its worker or connection limit) for a call, when known:
     * while no server span has started, the caller waits for that pool's holders. Default: not recorded.
     */
    intakePool: Type.Optional(Type.Unsafe<(target: RpcTarget) => string | undefined>(Type.Function([Type.Any()], Type.Any()))),
  },
  { additionalProperties: false },
);
/** Options of the RPC-wait hooks. */
export type RpcWaitOptions = Static<typeof RpcWaitOptionsSchema>;

/** Checks RPC-wait options. */
export function rpcWaitOptions(options: unknown, what: string): RpcWaitOptions {
  return checkOptions(RpcWaitOptionsSchema, options, what);
}

/** One call's wait: ended once, by whichever of reply, error or abandonment comes first. */
export class RpcWait {
  #open = true;

  private constructor(
    readonly span: Span,
    readonly task: string | undefined,
  ) {}

  /** Records `rpc.wait` on a recording CLIENT span. */
  static start(span: Span, target: RpcTarget, options: RpcWaitOptions): RpcWait | undefined {
    if (!span.isRecording()) return undefined;
    try {
      const attributes: Attributes = {};
      const peer = options.peerService?.(target);
      if (peer) attributes[ATTR.RPC_PEER_SERVICE] = peer;
      const pool = options.intakePool?.(target);
      if (pool) attributes[ATTR.POOL_NAME] = pool;
      const wait = new RpcWait(span, currentTaskId());
      record(span, EVENT.RPC_WAIT, withTask(attributes, span, wait.task));
      return wait;
    } catch (err) {
      swallow('recording an rpc wait', err);
      return undefined;
    }
  }

  /** The reply (or an error) came. */
  done(): void {
    this.#end(false);
  }

  /** The caller gave up. */
  abandoned(): void {
    this.#end(true);
  }

  #end(abandoned: boolean): void {
    if (!this.#open) return;
    this.#open = false;
    record(this.span, abandoned ? EVENT.RPC_TIMEOUT : EVENT.RPC_DONE, withTask({}, this.span, this.task));
  }
}

/** Whether an error means the caller abandoned the call (an abort or a client-side timeout). */
export function isAbandonment(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const { name, code } = err as { name?: unknown; code?: unknown };
  return (
    name === 'AbortError' ||
    name === 'TimeoutError' ||
    code === 'ABORT_ERR' ||
    code === 'UND_ERR_ABORTED' ||
    code === 'UND_ERR_HEADERS_TIMEOUT' ||
    code === 'UND_ERR_CONNECT_TIMEOUT'
  );
}
