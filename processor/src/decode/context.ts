/**
 * The state of one decoding run: the records decoded so far, and where errors go. In strict mode (no error
 * list) the first error is thrown; in lenient mode errors are collected and the offending record skipped, so
 * one bad span or one bad JSON line does not lose the good ones.
 */
import type { DecodedBatch, LogEventRecord, SpanRecord } from '../model/span.js';
import { DecodeError, type DecodeLocation } from './decode-error.js';

/** Accumulates decoded records and routes errors. Internal to the decoders. */
export class DecodeContext {
  readonly spans: SpanRecord[] = [];
  readonly logEvents: LogEventRecord[] = [];
  /** Spans seen so far, good or bad: numbers spans in error messages (`span #n`, 1-based). */
  spanCount = 0;
  /** Log records seen so far, good or bad. */
  logCount = 0;
  /**
   * Where OTLP protobuf trace messages go instead of the span decoder, if set (`WholeInputCut`): the
   * message's bytes and their offset in the input. Errors still go to this context.
   */
  tracesProto: ((bytes: Uint8Array, origin: number) => void) | undefined = undefined;

  constructor(
    /** The input's name, for error messages. */
    readonly source: string,
    /** Where errors go in lenient mode; null for strict mode (throw the first). */
    readonly errors: DecodeError[] | null,
    /** The span attributes to keep (the others are skipped unread); undefined for all. */
    readonly spanAttributes?: ReadonlySet<string>,
  ) {}

  /** Reports an error: throws in strict mode, records it in lenient mode. */
  fail(detail: string, where: Omit<DecodeLocation, 'source'>, cause?: unknown): void {
    const err = new DecodeError(detail, { source: this.source, ...where }, cause);
    if (this.errors === null) throw err;
    this.errors.push(err);
  }

  /** Records an error that was already thrown as a DecodeError: rethrows in strict mode. */
  report(err: unknown): void {
    if (this.errors === null || !(err instanceof DecodeError)) throw err;
    this.errors.push(err);
  }

  /** The decoded records. */
  batch(): DecodedBatch {
    return { spans: this.spans, logEvents: this.logEvents };
  }
}
