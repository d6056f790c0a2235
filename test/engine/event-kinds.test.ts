/**
 * The interned event kinds (events.ts, `EventKinds`): events alike but for their kept id share one kind,
 * found again without building anything; events that differ in any other attribute, in a value's type,
 * in their name or in coming as a log record have kinds of their own; past the table's limit, new kinds
 * are made per event while the kinds already there are still found.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EventKinds } from '../../processor/src/engine/events.js';
import type { AttrValue, Attributes } from '../../processor/src/model/span.js';

/** A copy of `a` made afresh, as a decoder makes each event's attributes: equal strings, other objects. */
function fresh(a: Attributes): Attributes {
  return JSON.parse(JSON.stringify(a)) as Attributes;
}

describe('EventKinds', () => {
  it('gives alike events one kind, whatever their kept ids', () => {
    const kinds = new EventKinds();
    const a = kinds.of('lock.acquire', { 'lock.id': 'row/1', 'lock.mode': 'shared', 'lock.kind': 'row' }, true, false);
    const b = kinds.of('lock.acquire', fresh({ 'lock.id': 'row/2', 'lock.mode': 'shared', 'lock.kind': 'row' }), true, false);
    expect(b).toBe(a);
    expect(a.rest).toEqual({ 'lock.mode': 'shared', 'lock.kind': 'row' });
    expect(a.mode).toBe('shared');
    expect(a.lockKind).toBe('row');
    expect(kinds.size).toBe(1);
  });

  it('keeps the id in the kind where the event does not keep it', () => {
    const kinds = new EventKinds();
    const a = kinds.of('lock.acquire', { 'lock.id': 7, 'lock.mode': 'shared' }, false, false);
    const b = kinds.of('lock.acquire', { 'lock.id': 8, 'lock.mode': 'shared' }, false, false);
    expect(b).not.toBe(a);
    expect(a.id).toBe('7');
    expect(b.id).toBe('8');
    expect(kinds.of('lock.acquire', { 'lock.id': 7, 'lock.mode': 'shared' }, false, false)).toBe(a);
  });

  it('tells apart names, log records, keys, values, value types and orders', () => {
    const kinds = new EventKinds();
    const variants: [string, Attributes, boolean][] = [
      ['pool.checkout', { 'pool.name': 'p', 'pool.size': 10 }, false],
      ['pool.checkout', { 'pool.name': 'p', 'pool.size': 10 }, true],
      ['pool.wait', { 'pool.name': 'p', 'pool.size': 10 }, false],
      ['pool.checkout', { 'pool.name': 'p', 'pool.size': '10' }, false],
      ['pool.checkout', { 'pool.name': 'p', 'pool.size': 11 }, false],
      ['pool.checkout', { 'pool.name': 'p', 'pool.max': 10 }, false],
      ['pool.checkout', { 'pool.name': 'p', 'pool.size': 10, x: true }, false],
      ['pool.checkout', { 'pool.name': 'p', 'pool.size': 10, x: 'true' }, false],
      ['pool.checkout', { 'pool.name': 'p', 'pool.size': 10, x: null }, false],
      ['pool.checkout', { 'pool.name': 'p', 'pool.size': 10, x: ['a', 1] }, false],
      ['pool.checkout', { 'pool.name': 'p', 'pool.size': 10, x: ['a', '1'] }, false],
      ['pool.checkout', { 'pool.name': 'p', 'pool.size': 10, x: 'a1[s1:a' }, false],
      ['pool.checkout', { 'pool.name': 'p', x: 1, 'pool.size': 10 }, false],
      ['pool.checkout', { 'pool.name': 'p' }, false],
    ];
    const made = variants.map(([name, attrs, log]) => kinds.of(name, attrs, true, log));
    expect(new Set(made).size).toBe(variants.length);
    expect(kinds.size).toBe(variants.length);
    // Each is found again from attributes made afresh.
    variants.forEach(([name, attrs, log], i) => expect(kinds.of(name, fresh(attrs), true, log)).toBe(made[i]));
    expect(made[1].log).toBe(true);
    expect(made[3].size).toBe(10);
    expect(made[13].rest).toEqual({});
  });

  it('past its limit, makes new kinds per event and still finds the ones it has', () => {
    const kinds = new EventKinds(2);
    const a = kinds.of('lock.wait', { 'lock.id': 'x', 'lock.kind': 'a' }, true, false);
    const b = kinds.of('lock.wait', { 'lock.id': 'x', 'lock.kind': 'b' }, true, false);
    const c1 = kinds.of('lock.wait', { 'lock.id': 'x', 'lock.kind': 'c' }, true, false);
    const c2 = kinds.of('lock.wait', { 'lock.id': 'x', 'lock.kind': 'c' }, true, false);
    expect(c2).not.toBe(c1);
    expect(c2.rest).toEqual(c1.rest);
    expect(c1.lockKind).toBe('c');
    // A longer path under a kept kind's, and a name not seen before: not kept either.
    const d1 = kinds.of('lock.wait', { 'lock.id': 'x', 'lock.kind': 'a', 'lock.mode': 'shared' }, true, false);
    expect(kinds.of('lock.wait', { 'lock.id': 'x', 'lock.kind': 'a', 'lock.mode': 'shared' }, true, false)).not.toBe(d1);
    expect(kinds.of('cert.wait', { 'cert.id': 'c' }, true, false)).not.toBe(kinds.of('cert.wait', { 'cert.id': 'c' }, true, false));
    expect(kinds.of('lock.wait', fresh({ 'lock.id': 'y', 'lock.kind': 'a' }), true, false)).toBe(a);
    expect(kinds.of('lock.wait', fresh({ 'lock.id': 'y', 'lock.kind': 'b' }), true, false)).toBe(b);
    expect(kinds.size).toBe(2);
  });

  it('past its limit, keeps no kind where the trie has a node on the way to another', () => {
    const kinds = new EventKinds(1);
    const long = kinds.of('lock.wait', { 'lock.id': 'x', 'lock.kind': 'a', 'lock.mode': 'shared' }, true, false);
    const short = kinds.of('lock.wait', { 'lock.id': 'x', 'lock.kind': 'a' }, true, false);
    expect(kinds.of('lock.wait', { 'lock.id': 'x', 'lock.kind': 'a' }, true, false)).not.toBe(short);
    expect(kinds.of('lock.wait', { 'lock.id': 'y', 'lock.kind': 'a', 'lock.mode': 'shared' }, true, false)).toBe(long);
    expect(kinds.size).toBe(1);
  });

  it('interns by the attributes besides the kept id, value for value, as JSON tells them apart', () => {
    const value: fc.Arbitrary<AttrValue> = fc.oneof(
      fc.constantFrom<AttrValue>('a', 'b', '1', 1, 2, -0, 0, true, false, null),
      fc.array(fc.constantFrom<AttrValue>('a', 1, '1', true), { maxLength: 2 }),
    );
    const attrs = fc.dictionary(fc.constantFrom('lock.id', 'lock.kind', 'k', '__proto__'), value, { maxKeys: 3 });
    const event = fc.tuple(fc.constantFrom('lock.wait', 'lock.acquire'), attrs, fc.boolean());
    fc.assert(
      fc.property(fc.array(event, { minLength: 1, maxLength: 30 }), (events) => {
        const kinds = new EventKinds();
        const byJson = new Map<string, ReturnType<EventKinds['of']>>();
        for (const [name, a, log] of events) {
          const idKept = EventKinds.idOf(name, a) !== undefined;
          const kind = kinds.of(name, a, idKept, log);
          const rest = Object.entries(a).filter(([k]) => !(idKept && k === 'lock.id'));
          // -0 and 0 are one value to JSON, as to the table.
          const key = JSON.stringify([name, log, rest]);
          const seen = byJson.get(key);
          if (seen === undefined) byJson.set(key, kind);
          else expect(kind).toBe(seen);
          expect(JSON.stringify(Object.entries(kind.rest))).toBe(JSON.stringify(rest));
        }
        expect(new Set(byJson.values()).size).toBe(byJson.size);
      }),
    );
  });
});
