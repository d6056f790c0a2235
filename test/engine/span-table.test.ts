/**
 * The span table: spans by trace, one span kept as itself, small traces scanned, large ones indexed, the
 * same span id in two traces kept apart, and children found within their trace, whatever the order spans
 * come, change and go in.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Instance, OPEN, SpanNode, TaskNode } from '../../processor/src/engine/model.js';
import { SpanTable } from '../../processor/src/engine/span-table.js';

const task = new TaskNode(new Instance('svc', 'svc', undefined, new Map()), 't', false);
const id = (n: number) => n.toString(16).padStart(16, '0');
const node = (trace: string, span: number, parent?: number, end = OPEN) =>
  new SpanNode(trace, id(span), parent === undefined ? undefined : id(parent), 'op', 1, end, task, 0, 0, 0, -1, false, false);

describe('SpanTable', () => {
  it('keeps spans by trace and span id, a new version in place of the old', () => {
    const t = new SpanTable();
    const a = node('t1', 1);
    const b = node('t1', 2, 1);
    const sameIdOtherTrace = node('t2', 1);
    for (const s of [a, b, sameIdOtherTrace]) t.set(s);
    expect(t.size).toBe(3);
    expect(t.get('t1', id(1))).toBe(a);
    expect(t.get('t2', id(1))).toBe(sameIdOtherTrace);
    expect(t.get('t3', id(1))).toBeUndefined();
    const a2 = node('t1', 1, undefined, 5);
    t.set(a2);
    expect(t.size).toBe(3);
    expect(t.get('t1', id(1))).toBe(a2);
    expect(t.childrenOf(a2)).toEqual([b]);
    expect(t.childrenOf(sameIdOtherTrace)).toEqual([]);
    t.delete(a); // not the kept version: nothing happens
    expect(t.size).toBe(3);
    t.delete(b);
    t.delete(a2);
    expect(t.size).toBe(1);
    expect([...t.values()]).toEqual([sameIdOtherTrace]);
    t.delete(sameIdOtherTrace);
    expect(t.size).toBe(0);
    expect(t.get('t2', id(1))).toBeUndefined();
  });

  it('finds spans and children in a large trace, before and after spans come and go', () => {
    const t = new SpanTable();
    const root = node('big', 1);
    t.set(root);
    const kids = Array.from({ length: 200 }, (_, i) => node('big', 1000 + i, 1));
    const grandkids = kids.map((k, i) => node('big', 5000 + i, 1000 + i));
    for (let i = 0; i < kids.length; i++) {
      t.set(grandkids[i]); // children first, as exporters send them
      t.set(kids[i]);
    }
    expect(t.size).toBe(401);
    expect(t.childrenOf(root)).toEqual(kids);
    expect(t.childrenOf(kids[7])).toEqual([grandkids[7]]);
    expect(t.get('big', id(5199))).toBe(grandkids[199]);
    t.delete(kids[3]);
    expect(t.childrenOf(root)).toHaveLength(199);
    expect(t.get('big', id(1003))).toBeUndefined();
    const late = node('big', 9999, 1);
    t.set(late);
    expect(t.childrenOf(root)).toContain(late);
    expect(t.get('big', id(9999))).toBe(late);
  });

  it('finds the child of a span that is gone, where the child is all its trace holds', () => {
    const t = new SpanTable();
    const child = node('t1', 1, 13);
    const parent = node('t1', 13);
    t.set(child);
    t.set(parent);
    t.delete(parent); // the trace is kept as its one span now
    expect(t.childrenOf(parent)).toEqual([child]);
    expect(t.hasOpenChild(parent)).toBe(true);
    t.set(node('t1', 1, 13, 5)); // the child ends
    expect(t.hasOpenChild(parent)).toBe(false);
    expect(t.childrenOf(node('t1', 2))).toEqual([]);
  });

  it('finds every child, whatever order spans come, change parents and go in', () => {
    type Op = { op: 'set'; trace: number; span: number; parent: number | undefined; v: number } | { op: 'delete'; trace: number; span: number };
    const spanIds = fc.integer({ min: 1, max: 60 }); // up to 60 in a trace: both sides of SCAN (48)
    const traces = fc.constantFrom(1, 1, 1, 2); // mostly one, so that it grows past SCAN
    const ops = fc.array(
      fc.oneof(
        {
          weight: 5,
          arbitrary: fc
            .record({ op: fc.constant('set' as const), trace: traces, span: spanIds, parent: fc.option(spanIds, { nil: undefined }), v: fc.nat(3) })
            // Not its own parent (bad input, where a trace of one span has no children either way).
            .filter((o) => o.parent !== o.span),
        },
        { weight: 1, arbitrary: fc.record({ op: fc.constant('delete' as const), trace: traces, span: spanIds }) },
      ),
      // Long runs (fast-check makes short arrays unless told): versions, late children and traces past SCAN.
      { minLength: 100, maxLength: 400 },
    );
    fc.assert(
      fc.property(ops, (list: Op[]) => {
        const t = new SpanTable();
        const held: SpanNode[] = []; // every version ever made, as callers may still hold them
        for (const o of list) {
          if (o.op === 'set') {
            const s = node(`t${o.trace}`, o.span, o.parent, o.v === 0 ? OPEN : o.v);
            held.push(s);
            t.set(s);
          } else {
            const s = t.get(`t${o.trace}`, id(o.span));
            if (s !== undefined) t.delete(s);
          }
          // The children of any span, as a search of the table by its ids finds them.
          const kept = [...t.values()];
          for (const s of held) {
            const want = kept.filter((k) => k.traceId === s.traceId && k.parentSpanId === s.spanId);
            const got = t.childrenOf(s);
            if (got.length !== want.length || !want.every((k) => got.includes(k))) {
              expect({ span: s.spanId, got: got.map((k) => k.spanId) }).toEqual({ span: s.spanId, got: want.map((k) => k.spanId) });
            }
            const open = want.some((k) => k.end === OPEN);
            if (t.hasOpenChild(s) !== open) expect({ span: s.spanId, hasOpenChild: t.hasOpenChild(s) }).toEqual({ span: s.spanId, hasOpenChild: open });
          }
        }
      }),
      { numRuns: 200 },
    );
  });
});
