/**
 * The cut of `waitgraph analyze` (`WholeInputCut`) against decoding every span: random histories of tasks
 * that take locks in child spans below chains of spans with no wait events (their holds handed up to the
 * open span of the task), wait in open spans, send some wait events as log records, resend snapshots and
 * duplicates, and are spread over OTLP protobuf and JSON inputs in any order. The findings must be those
 * of the whole input, decoded and fed as it is.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeBufferLenient, type DecodeError } from '../../processor/src/decode/index.js';
import { Detector } from '../../processor/src/engine/index.js';
import type { Finding } from '../../schemas/index.js';
import { SpanKind, type Attributes, type DecodedBatch, type LogEventRecord, type SpanRecord } from '../../processor/src/model/span.js';
import { cutDecoded } from '../../processor/src/run/index.js';
import { WholeInputCut } from '../../processor/src/scale/wait-cut.js';
import { WaitRecordBuilder } from '../../processor/src/scale/wait-records.js';
import { buildWorkload } from '../../processor/bench/otlp-workload.js';
import { tracesJson, tracesProto, type FixtureSpan } from '../run/otlp-fixtures.js';
import { span, lock, type Ev } from '../support/span-factory.js';
import { keyValues, type AttrsInput } from '../support/trace-builder.js';

const LOCKS = ['A', 'B', 'C'];

interface TaskPlan {
  /** The task's open span: a SERVER span or an INTERNAL one, with `task.id` or as a span-task. */
  server: boolean;
  named: boolean;
  /** Spans without wait events between the open span and the spans that take locks. */
  depth: number;
  /** Locks taken in ended child spans, each at the bottom of the chain or right under the open span. */
  holds: { lock: string; deep: boolean; viaLog: boolean; released: boolean; shared: boolean }[];
  /** The lock the task waits for in an open child span, if any. */
  wait: string | undefined;
  waitViaLog: boolean;
  /** The open span's ended version comes too: the task finished. */
  ends: boolean;
  /** A wait that timed out in an ended span below the chain (a deadlock broken in the past). */
  timedOut: string | undefined;
  /** The chain is of calls: CLIENT and SERVER spans by turns, not INTERNAL ones. */
  rpc: boolean;
  /**
   * Retried calls: a first attempt (no resend count) whose SERVER span still holds lock R and waits for
   * `serverWaits`, and a second (resend count 1) whose SERVER span waits for R while it is open; each
   * attempt open or ended.
   */
  retry: { firstEnded: boolean; secondEnded: boolean; serverWaits: string } | undefined;
}

const taskPlan: fc.Arbitrary<TaskPlan> = fc.record({
  server: fc.boolean(),
  named: fc.boolean(),
  depth: fc.nat({ max: 3 }),
  holds: fc.uniqueArray(
    fc.record({ lock: fc.constantFrom(...LOCKS), deep: fc.boolean(), viaLog: fc.boolean(), released: fc.boolean(), shared: fc.boolean() }),
    { maxLength: 2, selector: (h) => h.lock },
  ),
  wait: fc.option(fc.constantFrom(...LOCKS), { nil: undefined, freq: 4 }),
  waitViaLog: fc.boolean(),
  ends: fc.boolean(),
  timedOut: fc.option(fc.constantFrom(...LOCKS), { nil: undefined }),
  rpc: fc.boolean(),
  retry: fc.option(fc.record({ firstEnded: fc.boolean(), secondEnded: fc.boolean(), serverWaits: fc.constantFrom(...LOCKS) }), { nil: undefined, freq: 3 }),
});

interface History {
  spans: SpanRecord[];
  logs: LogEventRecord[];
}

/** The spans and log records of the tasks. */
function history(plans: TaskPlan[]): History {
  const spans: SpanRecord[] = [];
  const logs: LogEventRecord[] = [];
  plans.forEach((p, t) => {
    const id = `t${t}`;
    const service = `svc${t % 2}`;
    const attrs: Attributes = p.named ? { 'task.id': id } : {};
    const waitEvents: Ev[] = [];
    const root = span({ service, name: id, trace: id, kind: p.server ? SpanKind.SERVER : SpanKind.INTERNAL, attrs, start: 0, events: waitEvents });
    spans.push(root);
    // The chain: ended spans with no wait events (one with an event of another vocabulary).
    let bottom = root;
    for (let d = 0; d < p.depth; d++) {
      const kind = !p.rpc ? SpanKind.INTERNAL : d % 2 === 0 ? SpanKind.CLIENT : SpanKind.SERVER;
      bottom = span({ service, name: `${id}-via${d}`, parent: bottom, kind, start: 1 + d, end: 40 - d, events: d === 1 ? [[2, 'exception']] : [] });
      spans.push(bottom);
    }
    if (p.retry !== undefined) {
      const r = p.retry;
      const first = span({ service, name: `${id}-call`, parent: root, kind: SpanKind.CLIENT, start: 3, end: r.firstEnded ? 25 : undefined });
      const server0 = span({ service: 'stock', name: `${id}-serve0`, parent: first, kind: SpanKind.SERVER, start: 4, events: [[4, 'lock.acquire', lock('R')], [6, 'lock.wait', lock(r.serverWaits)]] });
      const again = span({ service, name: `${id}-call`, parent: root, kind: SpanKind.CLIENT, start: 26, end: r.secondEnded ? 35 : undefined, attrs: { 'http.request.resend_count': 1 } });
      const second = { ...again, spanId: again.spanId.slice(0, 15) + (again.spanId[15] === '0' ? '1' : '0') };
      // A second attempt that ended went through: its server waited for nothing.
      const server1 = span({ service: 'stock', name: `${id}-serve1`, parent: second, kind: SpanKind.SERVER, start: 27, end: r.secondEnded ? 34 : undefined, events: r.secondEnded ? [] : [[27, 'lock.wait', lock('R')]] });
      spans.push(first, server0, second, server1);
    }
    p.holds.forEach((h, k) => {
      const ev: Ev = [10 + k, 'lock.acquire', lock(h.lock, h.shared ? 'shared' : 'exclusive')];
      const taker = span({ service, name: `${id}-take${k}`, parent: h.deep ? bottom : root, start: 10 + k, end: 11 + k, events: h.viaLog ? [] : [ev] });
      spans.push(taker);
      if (h.viaLog) logs.push(logOf(taker, ev));
      if (h.released) spans.push(span({ service, name: `${id}-free${k}`, parent: root, start: 20 + k, end: 21 + k, events: [[20 + k, 'lock.release', lock(h.lock)]] }));
    });
    if (p.timedOut !== undefined) {
      spans.push(span({ service, name: `${id}-gave-up`, parent: bottom, start: 5, end: 8, events: [[5, 'lock.wait', lock(p.timedOut)], [8, 'lock.timeout', lock(p.timedOut)]] }));
    }
    if (p.wait !== undefined) {
      const ev: Ev = [30, 'lock.wait', lock(p.wait)];
      const waiter = span({ service, name: `${id}-wait`, parent: root, start: 30, events: p.waitViaLog ? [] : [ev] });
      spans.push(waiter);
      if (p.waitViaLog) logs.push(logOf(waiter, ev));
    }
    if (p.ends) spans.push({ ...root, endTimeUnixNano: root.startTimeUnixNano + 50e6, attributes: { ...root.attributes, 'span.partial': false } });
  });
  return { spans, logs };
}

function logOf(s: SpanRecord, [, name, attributes]: Ev): LogEventRecord {
  const e = s.events.find((x) => x.name === name);
  return { traceId: s.traceId, spanId: s.spanId, name, timeUnixNano: e?.timeUnixNano ?? s.startTimeUnixNano, attributes: attributes ?? {}, resource: s.resource };
}

function fixture(s: SpanRecord): FixtureSpan {
  const nanos = (t: number) => BigInt(t).toString();
  return {
    resource: keyValues(s.resource as AttrsInput),
    scope: 'waitgraph.test',
    span: {
      traceId: s.traceId,
      spanId: s.spanId,
      parentSpanId: s.parentSpanId,
      name: s.name,
      kind: s.kind,
      startTimeUnixNano: nanos(s.startTimeUnixNano),
      endTimeUnixNano: nanos(s.endTimeUnixNano),
      attributes: keyValues(s.attributes as AttrsInput),
      events: s.events.map((e) => ({ timeUnixNano: nanos(e.timeUnixNano), name: e.name, attributes: keyValues(e.attributes as AttrsInput) })),
    },
  };
}

function logsJson(logs: LogEventRecord[]): string {
  return JSON.stringify({
    resourceLogs: logs.map((e) => ({
      resource: { attributes: keyValues(e.resource as AttrsInput) },
      scopeLogs: [
        {
          scope: { name: 'waitgraph.test' },
          logRecords: [{ timeUnixNano: BigInt(e.timeUnixNano).toString(), eventName: e.name, traceId: e.traceId, spanId: e.spanId, attributes: keyValues(e.attributes as AttrsInput) }],
        },
      ],
    })),
  });
}

/** The history as input files: the spans spread over messages by `where`, each protobuf or JSON, in `order`; the log records in one more. */
function inputs(h: History, where: number[], json: boolean[], order: number[]): Uint8Array[] {
  const messages: SpanRecord[][] = Array.from({ length: json.length }, () => []);
  h.spans.forEach((s, i) => messages[where[i % where.length] % json.length].push(s));
  const out: Uint8Array[] = messages.filter((m) => m.length > 0).map((m, i) => (json[i] ? Buffer.from(tracesJson(m.map(fixture))) : tracesProto(m.map(fixture))));
  if (h.logs.length) out.push(Buffer.from(logsJson(h.logs)));
  const ordered: Uint8Array[] = [];
  const left = [...out];
  for (const k of order) if (left.length) ordered.push(left.splice(k % left.length, 1)[0]);
  return [...ordered, ...left];
}

/** Findings of every span decoded and fed: analyze before the cut. */
function wholeFindings(files: Uint8Array[]): Finding[] {
  const d = new Detector({ maxVictims: 1000 });
  files.forEach((f, i) => {
    const { batch, errors } = decodeBufferLenient(f, `in${i}`);
    expect(errors).toEqual([]);
    d.addBatch(batch);
  });
  d.detect();
  return d.findings();
}

/** Findings through the cut, every protobuf message scanned however small. */
function cutFindings(files: Uint8Array[]): { findings: Finding[]; cut: WholeInputCut } {
  const cut = new WholeInputCut({ wholeBelow: 0 });
  files.forEach((f, i) => {
    const errors: DecodeError[] = [];
    cut.addBuffer(f, `in${i}`, errors);
    expect(errors).toEqual([]);
  });
  const d = new Detector({ maxVictims: 1000 });
  for (const b of cut.finish()) d.addBatch(b);
  d.detect();
  return { findings: d.findings(), cut };
}

describe('the cut of a whole input (waitgraph analyze)', () => {
  it('gives the findings of every span, however the spans are spread over messages and formats, in any order', () => {
    let withFindings = 0;
    let throughRetries = 0;
    let cutSome = 0;
    let runs = 0;
    fc.assert(
      fc.property(
        fc.array(taskPlan, { minLength: 1, maxLength: 4 }),
        fc.array(fc.nat({ max: 7 }), { minLength: 1, maxLength: 40 }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 6 }).map((xs) => xs.map((x, i) => x && i % 2 === 1)),
        fc.array(fc.nat({ max: 9 }), { maxLength: 8 }),
        fc.array(fc.nat({ max: 60 }), { maxLength: 4 }),
        (plans, where, json, order, dupes) => {
          const h = history(plans);
          // Duplicates: some spans delivered twice.
          for (const k of dupes) if (h.spans.length) h.spans.push(h.spans[k % h.spans.length]);
          const files = inputs(h, where, json, order);
          const expected = wholeFindings(files);
          const { findings, cut } = cutFindings(files);
          expect(JSON.stringify(findings, null, 1)).toBe(JSON.stringify(expected, null, 1));
          runs++;
          if (expected.length) withFindings++;
          if (JSON.stringify(expected).includes('-serve1')) throughRetries++;
          if (cut.counts.spansKept < cut.counts.spansIn) cutSome++;
        },
      ),
      { numRuns: 400, seed: 20261122 },
    );
    // The property has something to hold: histories with findings, and inputs the cut made smaller.
    expect(runs).toBe(400);
    expect(withFindings).toBeGreaterThan(runs / 5);
    expect(cutSome).toBeGreaterThan(runs / 4);
    expect(throughRetries).toBeGreaterThan(runs / 10);
  });

  it('the live cut gives the findings of every span too, when spans come as a live emitter sends them', () => {
    // The order of `waitgraph run`'s input: log records as their events happen, snapshots of open spans,
    // then each span as it ends (children before their parents), one span a message.
    let withFindings = 0;
    fc.assert(
      fc.property(fc.array(taskPlan, { minLength: 1, maxLength: 4 }), (plans) => {
        const h = history(plans);
        const open = h.spans.filter((x) => x.endTimeUnixNano === 0);
        const ended = h.spans.filter((x) => x.endTimeUnixNano !== 0).sort((a, b) => a.endTimeUnixNano - b.endTimeUnixNano);
        const every = new Detector({ maxVictims: 1000 });
        every.addBatch({ spans: h.spans, logEvents: h.logs });
        every.detect();
        const builder = new WaitRecordBuilder();
        const live = new Detector({ maxVictims: 1000 });
        const feed = (batch: { spans: SpanRecord[]; logEvents: LogEventRecord[] }) => {
          const { batch: cut } = cutDecoded(builder, batch);
          live.addBatch(cut);
        };
        if (h.logs.length) feed({ spans: [], logEvents: h.logs });
        for (const x of [...open, ...ended]) feed({ spans: [x], logEvents: [] });
        live.detect();
        const expected = every.findings();
        if (expected.length) withFindings++;
        expect(JSON.stringify(live.findings(), null, 1)).toBe(JSON.stringify(expected, null, 1));
      }),
      { numRuns: 300, seed: 20261123 },
    );
    expect(withFindings).toBeGreaterThan(30);
  });

  it('gives findings that do not depend on the order spans and log records arrive in, down to the order of their lists', () => {
    fc.assert(
      fc.property(fc.array(taskPlan, { minLength: 1, maxLength: 4 }), fc.integer(), (plans, seed) => {
        const h = history(plans);
        const inputs: DecodedBatch[] = [...h.spans.map((x) => ({ spans: [x], logEvents: [] })), ...h.logs.map((e) => ({ spans: [], logEvents: [e] }))];
        const shuffled = fc.sample(fc.shuffledSubarray(inputs, { minLength: inputs.length }), { seed, numRuns: 1 })[0];
        const findings = (order: DecodedBatch[]) => {
          const d = new Detector({ maxVictims: 1000 });
          for (const b of order) d.addBatch(b);
          d.detect();
          return JSON.stringify(d.findings(), null, 1);
        };
        expect(findings(shuffled)).toBe(findings(inputs));
      }),
      { numRuns: 300, seed: 20261124 },
    );
  });

  it('follows an ancestor chain through messages that come in any order, one span a message', () => {
    const plans: TaskPlan[] = [
      { server: false, named: true, depth: 3, holds: [{ lock: 'A', deep: true, viaLog: false, released: false, shared: false }], wait: 'B', waitViaLog: false, ends: false, timedOut: undefined, rpc: false, retry: undefined },
      { server: true, named: false, depth: 2, holds: [{ lock: 'B', deep: true, viaLog: true, released: false, shared: false }], wait: 'A', waitViaLog: true, ends: false, timedOut: undefined, rpc: true, retry: undefined },
    ];
    const h = history(plans);
    const one = h.spans.map((s) => tracesProto([fixture(s)]));
    const logs = Buffer.from(logsJson(h.logs));
    for (const files of [[...one, logs], [logs, ...one.reverse()]]) {
      const expected = wholeFindings(files);
      expect(expected.map((f) => [f.kind, f.state, f.resources])).toEqual([['deadlock', 'active', ['A', 'B']]]);
      const { findings, cut } = cutFindings(files);
      expect(findings).toEqual(expected);
      // The chains run through spans the message filter alone would drop, in other messages.
      expect(cut.counts.rounds).toBeGreaterThan(1);
    }
  });

  it('follows a chain past a span of another trace with the same id in the same message', () => {
    const plans: TaskPlan[] = [
      { server: false, named: true, depth: 1, holds: [{ lock: 'A', deep: true, viaLog: false, released: false, shared: false }], wait: 'B', waitViaLog: false, ends: false, timedOut: undefined, rpc: false, retry: undefined },
      { server: false, named: true, depth: 0, holds: [{ lock: 'B', deep: false, viaLog: false, released: false, shared: false }], wait: 'A', waitViaLog: false, ends: false, timedOut: undefined, rpc: false, retry: undefined },
    ];
    const { spans } = history(plans);
    const via = spans.find((x) => x.name === 't0-via0')!;
    const other = spans.find((x) => x.name === 't1')!;
    // Ended, no wait events, in t1's trace, with the span id of t0's chain span: the message's table of ids holds this one.
    const twin: SpanRecord = { ...other, spanId: via.spanId, parentSpanId: other.spanId, name: 'twin', endTimeUnixNano: other.startTimeUnixNano + 1e6, events: [], attributes: {} };
    const files = [tracesProto([...spans, twin].map(fixture))];
    const expected = wholeFindings(files);
    expect(expected.map((f) => [f.kind, f.state, f.resources])).toEqual([['deadlock', 'active', ['A', 'B']]]);
    expect(cutFindings(files).findings).toEqual(expected);
  });

  it('decodes a message of a few spans whole, and feeds everything as it came when nothing was scanned', () => {
    const plans: TaskPlan[] = [{ server: false, named: false, depth: 2, holds: [], wait: 'A', waitViaLog: false, ends: false, timedOut: undefined, rpc: false, retry: undefined }];
    const { spans } = history(plans);
    const small = tracesProto(spans.map(fixture));
    const json = Buffer.from(tracesJson(spans.map(fixture)));
    for (const files of [[small], [json], [small, json]]) {
      const cut = new WholeInputCut();
      for (const f of files) cut.addBuffer(f, 'in', []);
      const batches = [...cut.finish()];
      // Every span, not cut: the chain spans without wait events and the attributes the engine does not read are there.
      expect(batches.flatMap((b) => b.spans)).toEqual(files.flatMap((f) => decodeBufferLenient(f, 'in').batch.spans));
      expect(cut.counts).toEqual({ spansIn: spans.length * files.length, spansKept: spans.length * files.length, rounds: 0 });
    }
    // Scanned, the same message is cut: the chain's spans go.
    const cut = new WholeInputCut({ wholeBelow: small.length });
    cut.addBuffer(small, 'in', []);
    const kept = [...cut.finish()].flatMap((b) => b.spans);
    expect(kept.map((s) => s.name)).toEqual(['t0', 't0-wait']);
    expect(kept[0].attributes).toEqual({ 'span.partial': true });
  });

  it('keeps a minority of a realistic workload and every span with wait events', () => {
    const work = buildWorkload({ spans: 20_000, batchSize: 500, seed: 5, partialsEndAfter: 20 });
    const cut = new WholeInputCut();
    for (const b of work.batches) cut.addBuffer(b, 'work', []);
    const batches = [...cut.finish()];
    const kept = batches.reduce((n, b) => n + b.spans.length, 0);
    expect(cut.counts.spansIn).toBe(work.spanCount);
    expect(cut.counts.spansKept).toBe(kept);
    expect(kept / work.spanCount).toBeGreaterThan(0.1);
    expect(kept / work.spanCount).toBeLessThan(0.7);
    let waitSpans = 0;
    for (const b of work.batches) waitSpans += decodeBufferLenient(b, 'work').batch.spans.filter((s) => s.events.some((e) => e.name.startsWith('lock.') || e.name.startsWith('pool.'))).length;
    expect(batches.reduce((n, b) => n + b.spans.filter((s) => s.events.length > 0).length, 0)).toBe(waitSpans);
  });
});
