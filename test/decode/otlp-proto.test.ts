/**
 * The protobuf reader on hand-made messages: wire shapes the OpenTelemetry JS serializers never write but
 * other emitters may (negative int64s, nested kvlists, unknown fields and groups, fields out of order).
 */
import { describe, expect, it } from 'vitest';
import { decodeBuffer, decodeBufferLenient, decodeOtlpLogsProto, decodeOtlpProto, decodeOtlpTracesProto } from '../../processor/src/decode/index.js';
import { double, fixed32, fixed64, hex, kv, ld, message, str, tag, vfield, type Bytes } from './proto-writer.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const START = 1763700000123456789n;

/** A Span's fields: ids, name, kind, times, then `extra`. */
function spanFields(spanId: string, extra: Bytes[] = [], kind = 2): Bytes[] {
  return [ld(1, hex(TRACE)), ld(2, hex(spanId)), str(5, 'op'), vfield(6, kind), fixed64(7, START), fixed64(8, START + 1000n), ...extra];
}
/** A TracesData with one ResourceSpans of `service` holding the spans (each a list of Span fields). */
function traces(service: string, ...spans: Bytes[][]): Uint8Array {
  const scope = ld(2, ...spans.map((s) => ld(2, ...s)));
  return message(ld(1, ld(1, ld(1, kv('service.name', str(1, service)))), scope));
}

describe('AnyValue flattening', () => {
  const attrs: Bytes[] = [
    ld(9, kv('neg', vfield(3, -5))),
    ld(9, kv('big', vfield(3, 2n ** 40n + 3n))),
    ld(9, kv('min', vfield(3, -(2n ** 53n)))),
    ld(9, kv('flag', vfield(2, 1))),
    ld(9, kv('ratio', double(4, 0.25))),
    ld(9, kv('raw', ld(7, hex('00ff10')))),
    ld(9, kv('list', ld(5, ld(1, str(1, 'x')), ld(1, vfield(3, 2)), ld(1, ld(6, ld(1, kv('k', str(1, 'v')))))))),
    ld(9, kv('map', ld(6, ld(1, kv('inner', ld(6, ld(1, kv('z', vfield(2, 1)))))), ld(1, kv('arr', ld(5, ld(1, str(1, 'a')), ld(1, ld(7, hex('ab'))))))))),
    ld(9, kv('empty')),
    ld(9, kv('__proto__', str(1, 'not a prototype'))),
    ld(9, kv('ünï', str(1, 'çödé ✓'))),
  ];
  const [span] = decodeOtlpTracesProto(traces('svc', spanFields('00f067aa0ba902b7', attrs))).spans;

  it('decodes every value type', () => {
    expect({ ...span.attributes }).toEqual({
      neg: -5,
      big: 2 ** 40 + 3,
      min: -(2 ** 53),
      flag: true,
      ratio: 0.25,
      raw: '00ff10',
      list: ['x', 2, '{"k":"v"}'],
      map: '{"inner":{"z":true},"arr":["a","ab"]}',
      empty: null,
      ['__proto__']: 'not a prototype',
      ünï: 'çödé ✓',
    });
  });

  it('reads only the span attributes asked for, and every event and resource attribute', () => {
    const event = ld(11, fixed64(1, START), str(2, 'lock.wait'), ld(3, kv('lock.id', str(1, 'L'))));
    // Two KeyValues with their value before their key (any field order is legal): the key is found past it.
    const valueFirst = (key: string, value: string) => ld(9, ld(2, str(1, value)), str(1, key));
    const extra = [ld(9, kv('thread.id', vfield(3, 7))), valueFirst('task.id', 'w-1'), valueFirst('not.asked', 'x'), event];
    const bytes = traces('svc', spanFields('00f067aa0ba902b7', [...attrs, ...extra]));
    const [cut] = decodeOtlpTracesProto(bytes, 'cut.pb', { spanAttributes: new Set(['thread.id', 'task.id', 'ratio', 'absent']) }).spans;
    expect({ ...cut.attributes }).toEqual({ ratio: 0.25, 'thread.id': 7, 'task.id': 'w-1' });
    expect(cut.events).toEqual([{ name: 'lock.wait', timeUnixNano: Number(START), attributes: { 'lock.id': 'L' } }]);
    expect(cut.resource).toEqual({ 'service.name': 'svc' });
    const [whole] = decodeOtlpTracesProto(bytes).spans;
    expect({ ...cut, attributes: {} }).toEqual({ ...whole, attributes: {} });
  });

  it('keeps a "__proto__" key as a plain property', () => {
    expect(Object.getPrototypeOf(span.attributes)).toBe(Object.prototype);
    expect(Object.keys(span.attributes)).toContain('__proto__');
  });

  it('takes the last key of a KeyValue with two, whether it reads every attribute or only those asked for', () => {
    // Protobuf: a field that comes twice keeps its last value. Asked for task.id: the first KeyValue is
    // under k, the second under task.id, whatever its first key says.
    const twice = [ld(9, str(1, 'task.id'), str(1, 'k'), ld(2, str(1, 'v'))), ld(9, str(1, 'x'), ld(2, str(1, 't-1')), str(1, 'task.id'))];
    const bytes = traces('svc', spanFields('00f067aa0ba902b7', twice));
    const [whole] = decodeOtlpTracesProto(bytes).spans;
    expect({ ...whole.attributes }).toEqual({ k: 'v', 'task.id': 't-1' });
    const [asked] = decodeOtlpTracesProto(bytes, 'cut.pb', { spanAttributes: new Set(['task.id']) }).spans;
    expect({ ...asked.attributes }).toEqual({ 'task.id': 't-1' });
    const [askedK] = decodeOtlpTracesProto(bytes, 'cut.pb', { spanAttributes: new Set(['k']) }).spans;
    expect({ ...askedK.attributes }).toEqual({ k: 'v' });
  });

  it('reads fixed64 times as doubles rounded once', () => {
    expect(span.startTimeUnixNano).toBe(Number(START));
    expect(span.endTimeUnixNano).toBe(Number(START + 1000n));
  });
});

describe('wire tolerance', () => {
  it('skips unknown fields of every wire type, groups included', () => {
    const extra: Bytes[] = [
      fixed32(16, 0x301), // flags
      vfield(12, 3), // dropped events count
      [...tag(50, 3), ...vfield(1, 7), ...ld(2, [1, 2, 3]), ...tag(50, 4)], // a group
      ld(99, [9, 9, 9]),
      fixed64(98, 1n),
    ];
    const [span] = decodeOtlpTracesProto(traces('svc', spanFields('00f067aa0ba902b7', extra))).spans;
    expect(span).toMatchObject({ traceId: TRACE, spanId: '00f067aa0ba902b7', name: 'op', kind: 2, attributes: {} });
  });

  it('gives spans the resource even when it comes after them', () => {
    const scope = ld(2, ld(2, ...spanFields('00f067aa0ba902b7')));
    const bytes = message(ld(1, scope, ld(1, ld(1, kv('service.name', str(1, 'late'))))));
    expect(decodeOtlpTracesProto(bytes).spans[0].resource).toEqual({ 'service.name': 'late' });
  });

  it('maps unknown span kinds to UNSPECIFIED and an all-zero parent to none', () => {
    const [span] = decodeOtlpTracesProto(traces('svc', spanFields('00f067aa0ba902b7', [ld(4, hex('0000000000000000'))], 9))).spans;
    expect(span.kind).toBe(0);
    expect(span.parentSpanId).toBeUndefined();
  });

  it('rejects invalid wire types and mismatched groups with the byte offset', () => {
    expect(() => decodeOtlpProto(message([...tag(1, 7), 0]), 'w.pb')).toThrow(/^w\.pb: byte 0: invalid wire type 7 \(field 1\)$/);
    expect(() => decodeOtlpProto(message([...tag(3, 3), ...tag(4, 4)]), 'g.pb')).toThrow(/^g\.pb: byte \d+: mismatched end of group \(field 4, expected 3\)$/);
  });

  it('tells protobuf from JSON even when the message starts with "\\n{"', () => {
    // Pad one span until its ResourceSpans is 0x7b = '{' bytes long: the input then begins "\n{".
    for (let pad = 0; pad < 200; pad++) {
      const bytes = traces('svc', spanFields('00f067aa0ba902b7', [ld(9, kv('pad', str(1, 'x'.repeat(pad))))]));
      if (bytes[1] !== 0x7b) continue;
      expect(bytes[0]).toBe(0x0a);
      expect(decodeBuffer(bytes, 'brace.pb').spans.map((s) => s.spanId)).toEqual(['00f067aa0ba902b7']);
      return;
    }
    throw new Error('no padding gives a 123-byte ResourceSpans');
  });
});

describe('lenient protobuf', () => {
  it('skips a span with a bad id, keeps the others, and names it', () => {
    const bytes = traces('svc', spanFields('00f067aa0ba902b7'), spanFields('0000000000000000'), spanFields('b7ad6b7169203331'));
    const { batch, errors } = decodeBufferLenient(bytes, 'mixed.pb');
    expect(batch.spans.map((s) => s.spanId)).toEqual(['00f067aa0ba902b7', 'b7ad6b7169203331']);
    expect(errors).toHaveLength(1);
    expect(errors[0].message).toMatch(/^mixed\.pb: byte \d+: resourceSpans\[0\]\.scopeSpans\[0\]\.spans\[1\]: span #2: span_id is all zeros$/);
  });
});

describe('log records', () => {
  /** A LogsData with one ResourceLogs holding the records (each a list of LogRecord fields). */
  function logs(...records: Bytes[][]): Uint8Array {
    return message(ld(1, ld(1, ld(1, kv('service.name', str(1, 'svc')))), ld(2, ...records.map((r) => ld(2, ...r)))));
  }
  const ids = [ld(9, hex(TRACE)), ld(10, hex('00f067aa0ba902b7'))];

  it('are told from spans by wire shape, whatever field comes first', () => {
    // event_name first, no time_unix_nano: the observed time stands in.
    const bytes = logs([str(12, 'lock.wait'), ...ids, fixed64(11, START), ld(6, kv('lock.id', str(1, 'L1')))]);
    const batch = decodeOtlpProto(bytes);
    expect(batch.spans).toEqual([]);
    expect(batch.logEvents).toEqual([
      { traceId: TRACE, spanId: '00f067aa0ba902b7', name: 'lock.wait', timeUnixNano: Number(START), attributes: { 'lock.id': 'L1' }, resource: { 'service.name': 'svc' } },
    ]);
    expect(decodeBuffer(bytes, 'logs.pb')).toEqual(batch);
  });

  it('take the name from the event.name attribute when the field is absent, and skip plain logs', () => {
    const named = [fixed64(1, START), ...ids, ld(6, kv('event.name', str(1, 'pool.wait'))), ld(6, kv('pool.name', str(1, 'db')))];
    const plain = [fixed64(1, START), ...ids, ld(5, str(1, 'just a log line'))];
    const batch = decodeOtlpLogsProto(logs(plain, named));
    expect(batch.logEvents.map((e) => [e.name, e.attributes])).toEqual([['pool.wait', { 'pool.name': 'db' }]]);
  });

  it('name a wait event whose span id is malformed', () => {
    const bad = [fixed64(1, START), ld(9, hex(TRACE)), ld(10, hex('0102')), str(12, 'lock.wait')];
    expect(() => decodeOtlpLogsProto(logs(bad), 'l.pb')).toThrow(
      /^l\.pb: byte \d+: resourceLogs\[0\]\.scopeLogs\[0\]\.logRecords\[0\]: log event 'lock\.wait' \(log record #1\): span_id is 2 bytes, expected 8$/,
    );
  });
});
