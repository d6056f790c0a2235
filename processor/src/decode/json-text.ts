/**
 * JSON text handling shared by the JSON decoders: parsing with errors that say `line:column`, and telling a
 * single JSON document from JSON Lines (one document per line, as the Collector's file exporter writes).
 *
 * V8's JSON.parse messages give a character position for most errors but not all ("Unexpected token ...,
 * "..." is not valid JSON" has none), so a small syntax scanner finds the position of the first error when
 * the message lacks one. It runs only on the error path.
 */
import type { DecodedBatch } from '../model/span.js';
import { DecodeContext } from './context.js';

/** A JSON syntax error: the offset of the offending character and the reason, without V8's echo of the input. */
export interface JsonSyntaxProblem {
  offset: number;
  reason: string;
}

/** Parses JSON text; returns the value, or the problem with its offset. */
export function tryParseJson(text: string): { value: unknown; problem: undefined } | { value: undefined; problem: JsonSyntaxProblem } {
  try {
    return { value: JSON.parse(text), problem: undefined };
  } catch (err) {
    return { value: undefined, problem: describeSyntaxError(text, err as Error) };
  }
}

function describeSyntaxError(text: string, err: Error): JsonSyntaxProblem {
  const msg = err.message;
  const m = /^(.*?)(?: in JSON)? at position (\d+)/.exec(msg);
  if (m) return { offset: Number(m[2]), reason: m[1] };
  if (/Unexpected end of JSON input/.test(msg)) return { offset: text.length, reason: 'unexpected end of JSON input' };
  const found = scanForSyntaxError(text);
  const reason = /^(Unexpected token '.*?')/.exec(msg)?.[1] ?? msg.replace(/, ".*" is not valid JSON$/s, '');
  return { offset: found ?? 0, reason };
}

/** 1-based line and column of a character offset (columns count UTF-16 code units, as editors mostly do). */
export function lineColumn(text: string, offset: number, firstLine = 1): { line: number; column: number } {
  let line = firstLine;
  let lineStart = 0;
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return { line, column: offset - lineStart + 1 };
}

/**
 * Decodes JSON text (one document or JSON Lines) or an already parsed value with `into`, strictly: the
 * first problem is thrown.
 */
export function decodeJsonStrict(
  input: string | object,
  source: string,
  into: (ctx: DecodeContext, doc: unknown, line: number | undefined) => void,
): DecodedBatch {
  const ctx = new DecodeContext(source, null);
  if (typeof input === 'string') forEachJsonDocument(input, ctx, (doc, line) => into(ctx, doc, line));
  else into(ctx, input, undefined);
  return ctx.batch();
}

/**
 * Calls `visit` for each JSON document of `text`: the whole text when it is one document, else each
 * non-blank line when the text is JSON Lines. `visit` gets the document and its 1-based line (JSON Lines)
 * or undefined (one document). Syntax errors go to `ctx` with line and column; in lenient mode a bad line is
 * reported and the other lines still decoded.
 */
export function forEachJsonDocument(text: string, ctx: DecodeContext, visit: (doc: unknown, line: number | undefined) => void): void {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const whole = tryParseJson(text);
  if (whole.problem === undefined) {
    visit(whole.value, undefined);
    return;
  }
  const lines = looksLikeJsonLines(text);
  if (lines === undefined) {
    const { line, column } = lineColumn(text, whole.problem.offset);
    ctx.fail(`invalid JSON: ${whole.problem.reason}`, { line, column });
    return;
  }
  for (const { text: lineText, line } of lines) {
    const parsed = tryParseJson(lineText);
    if (parsed.problem !== undefined) {
      ctx.fail(`invalid JSON: ${parsed.problem.reason}`, { line, column: parsed.problem.offset + 1 });
      continue;
    }
    try {
      visit(parsed.value, line);
    } catch (err) {
      ctx.report(err);
    }
  }
}

/**
 * The non-blank lines of `text` if it looks like JSON Lines: at least two non-blank lines, most of them
 * starting with `{` or `[`, and at least one of them a complete JSON document by itself. A pretty-printed
 * document with a syntax error fails this (its lines are fragments) and is reported as one document.
 */
function looksLikeJsonLines(text: string): { text: string; line: number }[] | undefined {
  const out: { text: string; line: number }[] = [];
  let braces = 0;
  let lineNo = 0;
  for (let start = 0; start <= text.length; ) {
    let nl = text.indexOf('\n', start);
    if (nl === -1) nl = text.length;
    lineNo++;
    const raw = text.slice(start, nl);
    const trimmed = raw.trim();
    if (trimmed !== '') {
      out.push({ text: raw, line: lineNo });
      const c = trimmed.charCodeAt(0);
      if (c === 0x7b || c === 0x5b) braces++;
    }
    start = nl + 1;
  }
  if (out.length < 2 || braces * 2 < out.length) return undefined;
  for (const l of out) {
    const t = l.text.trim();
    const c = t.charCodeAt(0);
    if ((c === 0x7b || c === 0x5b) && t.length > 1 && tryParseJson(l.text).problem === undefined) return out;
  }
  return undefined;
}

/**
 * Finds the offset of the first JSON syntax error, or undefined if the text is valid. A plain recursive
 * descent over RFC 8259; used only to locate errors that V8's message leaves without a position.
 */
export function scanForSyntaxError(text: string): number | undefined {
  let i = 0;
  const n = text.length;
  const ws = () => {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else break;
    }
  };
  // Each returns false at the error, leaving `i` on the offending character.
  const value = (depth: number): boolean => {
    if (depth > 10000) return false;
    ws();
    if (i >= n) return false;
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') {
        i++;
        return true;
      }
      for (;;) {
        ws();
        if (text[i] !== '"' || !string()) return false;
        ws();
        if (text[i] !== ':') return false;
        i++;
        if (!value(depth + 1)) return false;
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return true;
        }
        return false;
      }
    }
    if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') {
        i++;
        return true;
      }
      for (;;) {
        if (!value(depth + 1)) return false;
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return true;
        }
        return false;
      }
    }
    if (c === '"') return string();
    if (c === '-' || (c >= '0' && c <= '9')) return number();
    for (const lit of ['true', 'false', 'null']) {
      if (text.startsWith(lit, i)) {
        i += lit.length;
        return true;
      }
    }
    // Point at the first character that cannot continue a literal.
    for (const lit of ['true', 'false', 'null']) {
      if (lit[0] === c) {
        let k = 0;
        while (k < lit.length && text[i + k] === lit[k]) k++;
        i += k;
        return false;
      }
    }
    return false;
  };
  const string = (): boolean => {
    i++;
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return true;
      }
      if (c < 0x20) return false;
      if (c === 0x5c) {
        const e = text[i + 1];
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) {
            i += 2;
            return false;
          }
          i += 6;
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) i += 2;
        else {
          i++;
          return false;
        }
      } else i++;
    }
    return false;
  };
  const number = (): boolean => {
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(i, i + 400));
    if (!m || m[0] === '-') {
      i++;
      return false;
    }
    i += m[0].length;
    return true;
  };
  if (!value(0)) return Math.min(i, n);
  ws();
  return i < n ? i : undefined;
}
