/**
 * Bad input: every error says what is wrong and where (file, line:column, byte offset, span), and the
 * lenient decoders keep the good records next to the errors.
 */
import { describe, expect, it } from 'vitest';
import { WaitgraphError } from '../../processor/src/errors.js';
import {
  DecodeError,
  decodeBuffer,
  decodeBufferLenient,
  decodeJaegerJson,
  decodeOtlpJson,
  decodeOtlpTracesProto,
} from '../../processor/src/decode/index.js';
import { buildWorkload } from '../../processor/bench/otlp-workload.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';

function span(spanId: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { traceId: TRACE, spanId, name: 'op', kind: 2, startTimeUnixNano: '1763700000000000000', endTimeUnixNano: '1763700001000000000', ...extra };
}
function request(...spans: Record<string, unknown>[]): string {
  return JSON.stringify({ resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'svc' } }] }, scopeSpans: [{ spans }] }] });
}

/** The error thrown by `fn`, which must be a DecodeError. */
function thrown(fn: () => unknown): DecodeError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DecodeError);
    return err as DecodeError;
  }
  throw new Error('expected a DecodeError');
}

describe('DecodeError', () => {
  it('is a WaitgraphError of code bad-input, not retriable', () => {
    const err = thrown(() => decodeOtlpJson('{', 'x.json'));
    expect(err).toBeInstanceOf(WaitgraphError);
    expect(err.code).toBe('bad-input');
    expect(err.retriable).toBe(false);
  });
});

describe('broken JSON', () => {
  it('names the file, line and column of a syntax error', () => {
    const text = '{\n  "resourceSpans": [\n    {"resource": {}, }\n  ]\n}\n';
    const err = thrown(() => decodeOtlpJson(text, 'broken.json'));
    expect(err.message).toMatch(/^broken\.json:3:22: invalid JSON: /);
    expect([err.source, err.line, err.column]).toEqual(['broken.json', 3, 22]);
  });

  it('finds the position where V8 gives none ("Unexpected token")', () => {
    const err = thrown(() => decodeOtlpJson('{"resourceSpans":\n  [tru]}', 'tok.json'));
    expect(err.message).toMatch(/^tok\.json:2:7: invalid JSON: Unexpected token/);
  });

  it('points at the end of truncated JSON', () => {
    const err = thrown(() => decodeBuffer(Buffer.from('{"resourceSpans": [\n'), 'cut.json'));
    expect([err.line, err.column]).toEqual([2, 1]);
    expect(err.message).toContain('cut.json:2:1');
  });

  it('rejects JSON that is neither OTLP nor Jaeger', () => {
    expect(thrown(() => decodeBuffer(Buffer.from('{"spans": 3}'), 'other.json')).message).toMatch(/^other\.json: neither OTLP JSON/);
    expect(thrown(() => decodeOtlpJson({ data: [] }, 'jaeger.json')).message).toMatch(/^jaeger\.json: not an OTLP JSON document/);
  });
});

describe('JSON Lines with one bad line', () => {
  const good1 = request(span('00f067aa0ba902b7'));
  const good2 = request(span('b7ad6b7169203331'));
  const text = `${good1}\n{"resourceSpans": [ oops ]}\n\n${good2}\n`;

  it('keeps the good lines and reports the bad one by line and column (lenient)', () => {
    const { batch, errors } = decodeBufferLenient(Buffer.from(text), 'spans.jsonl');
    expect(batch.spans.map((s) => s.spanId)).toEqual(['00f067aa0ba902b7', 'b7ad6b7169203331']);
    expect(errors).toHaveLength(1);
    expect(errors[0].message).toMatch(/^spans\.jsonl:2:21: invalid JSON/);
  });

  it('throws at the bad line (strict)', () => {
    expect(thrown(() => decodeBuffer(Buffer.from(text), 'spans.jsonl')).message).toMatch(/^spans\.jsonl:2:21: /);
  });

  it('reports a bad span on its line and keeps the other spans of that line', () => {
    const mixed = `${good1}\n${request(span('c1a2b3c4d5e6f708'), span('d00d', {}))}\n`;
    const { batch, errors } = decodeBufferLenient(Buffer.from(mixed), 'mixed.jsonl');
    expect(batch.spans.map((s) => s.spanId)).toEqual(['00f067aa0ba902b7', 'c1a2b3c4d5e6f708']);
    expect(errors.map((e) => e.message)).toEqual([
      'mixed.jsonl:2: resourceSpans[0].scopeSpans[0].spans[1]: span #3: spanId "d00d" is not 16 hex digits (or base64 of 8 bytes)',
    ]);
  });
});

describe('spans the engine cannot use are errors, not silent drops', () => {
  const cases: [string, Record<string, unknown>, string][] = [
    ['a short trace id', { traceId: 'abc123' }, 'traceId "abc123" is not 32 hex digits'],
    ['an all-zero trace id', { traceId: '0'.repeat(32) }, 'traceId is all zeros'],
    ['a missing span id', { spanId: undefined }, 'spanId is missing'],
    ['an all-zero span id', { spanId: '0000000000000000' }, 'spanId is all zeros'],
    ['a missing start time', { startTimeUnixNano: undefined }, 'startTimeUnixNano is missing'],
    ['a start time that is no number', { startTimeUnixNano: 'yesterday' }, 'startTimeUnixNano "yesterday" is not a count of nanoseconds'],
    ['a bad parent id', { parentSpanId: 'xyz' }, 'parentSpanId "xyz" is not 16 hex digits'],
    ['attributes that are no list', { attributes: { a: 1 } }, 'attributes is not an array'],
  ];
  for (const [what, patch, message] of cases) {
    it(`OTLP JSON: ${what}`, () => {
      const err = thrown(() => decodeOtlpJson(request(span('00f067aa0ba902b7'), span('b7ad6b7169203331', patch)), 'bad.json'));
      expect(err.message).toContain(`bad.json: resourceSpans[0].scopeSpans[0].spans[1]: span #2: ${message}`);
    });
  }

  it('an all-zero parent span id means a root span', () => {
    expect(decodeOtlpJson(request(span('00f067aa0ba902b7', { parentSpanId: '0000000000000000' }))).spans[0].parentSpanId).toBeUndefined();
  });

  it('Jaeger: names the trace and span', () => {
    const doc = { data: [{ traceID: TRACE, spans: [{ spanID: 'zz', startTime: 1, duration: 1 }], processes: {} }] };
    expect(thrown(() => decodeJaegerJson(doc, 'j.json')).message).toBe('j.json: data[0].spans[0]: span #1: spanID "zz" is not hex of at most 16 digits');
  });

  it('OTLP logs: a wait event without a span is an error, other events without one are skipped', () => {
    const logs = (eventName: string) =>
      JSON.stringify({ resourceLogs: [{ scopeLogs: [{ logRecords: [{ timeUnixNano: '1763700000000000000', eventName, attributes: [] }] }] }] });
    expect(thrown(() => decodeOtlpJson(logs('lock.wait'), 'l.json')).message).toBe(
      "l.json: resourceLogs[0].scopeLogs[0].logRecords[0]: log event 'lock.wait' (log record #1): has no traceId/spanId: a wait event must name the span it belongs to",
    );
    expect(decodeOtlpJson(logs('browser.click'), 'l.json').logEvents).toEqual([]);
  });
});

describe('broken protobuf', () => {
  const [bytes] = buildWorkload({ spans: 50, batchSize: 50 }).batches;

  it('names the byte offset of a truncated message', () => {
    const cut = bytes.subarray(0, bytes.length - 10);
    const err = thrown(() => decodeOtlpTracesProto(cut, 'cut.pb'));
    expect(err.message).toMatch(/^cut\.pb: byte \d+: truncated: a field of \d+ bytes at byte \d+ runs past the end of its message at byte \d+$/);
    expect(err.offset).toBeGreaterThanOrEqual(0);
    expect(thrown(() => decodeBuffer(cut, 'cut.pb')).message).toMatch(/^cut\.pb: byte \d+: truncated/);
  });

  it('keeps the messages before a truncated one in a length-prefixed stream (lenient)', () => {
    const frame = (b: Uint8Array) => {
      const f = Buffer.alloc(4 + b.length);
      f.writeUInt32BE(b.length, 0);
      f.set(b, 4);
      return f;
    };
    const stream = Buffer.concat([frame(bytes), frame(bytes)]);
    const cut = stream.subarray(0, stream.length - 3);
    const { batch, errors } = decodeBufferLenient(cut, 'stream.binpb');
    expect(batch.spans).toHaveLength(50);
    expect(errors.map((e) => e.message)).toEqual([`stream.binpb: byte ${4 + bytes.length}: truncated: a message of ${bytes.length} bytes runs past the end of the input (${bytes.length - 3} bytes left)`]);
  });

  it('names the span and offset of a span with a bad id', () => {
    // A TracesData with one span whose trace_id is 4 bytes: 0a(ResourceSpans) 12(ScopeSpans) 12(Span) 0a 04 ...
    const spanBytes = [0x0a, 0x04, 1, 2, 3, 4, 0x12, 0x08, 1, 2, 3, 4, 5, 6, 7, 8, 0x39, 1, 0, 0, 0, 0, 0, 0, 0];
    const scope = [0x12, spanBytes.length, ...spanBytes];
    const rs = [0x12, scope.length, ...scope];
    const msg = new Uint8Array([0x0a, rs.length, ...rs]);
    const err = thrown(() => decodeOtlpTracesProto(msg, 'ids.pb'));
    expect(err.message).toBe('ids.pb: byte 6: resourceSpans[0].scopeSpans[0].spans[0]: span #1: trace_id is 4 bytes, expected 16');
  });

  it('rejects bytes that are not protobuf', () => {
    expect(thrown(() => decodeBuffer(Buffer.from([0x0f, 0xff, 0xff]), 'junk.bin')).message).toMatch(/^junk\.bin: byte \d+: /);
  });
});
