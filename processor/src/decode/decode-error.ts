/**
 * The error every decoder throws for input it cannot use: what is wrong and where, in the form editors and
 * terminals link (`file:line:column: ...`, `file: byte N: ...`, `file: resourceSpans[0]...: ...`).
 * Decoding errors are poison input: code `bad-input`, never retriable.
 */
import { WaitgraphError } from '../errors.js';

/** Where in the input a decoding error was found. Fields that do not apply are undefined. */
export interface DecodeLocation {
  /** The input's name: a file name, a topic/partition/offset, `<memory>` when none was given. */
  source: string;
  /** 1-based line (JSON, JSON Lines). */
  line?: number;
  /** 1-based column (JSON syntax errors). */
  column?: number;
  /** Byte offset from the start of the input (protobuf). */
  offset?: number;
  /** The JSON path or protobuf field path of the offending element, e.g. `resourceSpans[0].scopeSpans[1].spans[3]`. */
  path?: string;
}

/** Input that cannot be decoded: bad syntax, a truncated message, or a span the engine cannot use. */
export class DecodeError extends WaitgraphError {
  /** The input's name. */
  readonly source: string;
  /** 1-based line, where known. */
  readonly line: number | undefined;
  /** 1-based column, where known. */
  readonly column: number | undefined;
  /** Byte offset, where known (protobuf). */
  readonly offset: number | undefined;
  /** Path of the offending element, where known. */
  readonly path: string | undefined;
  /** What is wrong, without the location prefix. */
  readonly detail: string;

  constructor(detail: string, where: DecodeLocation, cause?: unknown) {
    super('bad-input', formatMessage(detail, where), { retriable: false, cause });
    this.name = 'DecodeError';
    this.source = where.source;
    this.line = where.line;
    this.column = where.column;
    this.offset = where.offset;
    this.path = where.path;
    this.detail = detail;
  }
}

function formatMessage(detail: string, w: DecodeLocation): string {
  let at = w.source;
  if (w.line !== undefined) at += `:${w.line}` + (w.column !== undefined ? `:${w.column}` : '');
  if (w.offset !== undefined) at += `: byte ${w.offset}`;
  if (w.path !== undefined) at += `: ${w.path}`;
  return `${at}: ${detail}`;
}

/** The source name used when the caller gives none. */
export const DEFAULT_SOURCE = '<memory>';
