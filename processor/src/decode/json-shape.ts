/**
 * Helpers of the JSON decoders for walking parsed documents of unknown shape.
 */

/** A parsed JSON object. */
export type Obj = Record<string, unknown>;

/** True for a JSON object (not an array, not null). */
export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * A structural problem inside one record (span, log record, resource): thrown inside the record's reader
 * and turned by it into a DecodeError that names the record.
 */
export class ShapeProblem extends Error {}
