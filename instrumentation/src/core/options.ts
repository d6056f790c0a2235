/**
 * Option checking for everything waitgraph constructs: options are typed, every field optional, the
 * default written in the doc comment, and checked once, when the object is made, against a TypeBox
 * schema (the same JSON Schema the docs show). A bad option is a `WaitgraphError` with code `bad-config`
 * at start, never a surprise later.
 */
import type { Static, TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { WaitgraphError } from '../../../schemas/src/errors.js';

/** Returns `value` typed by `schema`, or throws `bad-config` naming the first offending field. */
export function checkOptions<S extends TSchema>(schema: S, value: unknown, what: string): Static<S> {
  const options = value ?? {};
  if (Value.Check(schema, options)) return options;
  const first = Value.Errors(schema, options).First();
  const where = first?.path ? first.path.slice(1).replaceAll('/', '.') : '';
  throw new WaitgraphError('bad-config', `${what}: ${where ? `${where}: ` : ''}${first?.message ?? 'invalid options'}`);
}
