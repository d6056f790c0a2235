/**
 * JSON Schema validators over the committed schema files (not the TypeScript source), so tests check
 * what users and other languages see.
 */
import { Ajv, type ValidateFunction } from 'ajv';
import formats from 'ajv-formats';
import { readFileSync } from 'node:fs';

const ajv = new Ajv({ allErrors: true, strict: false });
// ajv-formats is CommonJS: under NodeNext its default import is the module object.
(formats as unknown as { default: (a: Ajv) => void }).default(ajv);

function read(file: string): object {
  return JSON.parse(readFileSync(new URL(`../../schemas/${file}`, import.meta.url), 'utf8'));
}

/** Validates one finding. */
export const validateFinding = ajv.compile(read('finding.schema.json'));
/** Validates `waitgraph analyze --json` output (its items refer to the finding schema by $id). */
export const validateAnalyzeOutput = ajv.compile(read('analyze-output.schema.json'));
/** Validates one wait event in its flat form. */
export const validateWaitEvent = ajv.compile(read('wait-events.schema.json'));

/** The validator's errors as one readable string. */
export function schemaErrors(v: ValidateFunction): string {
  return ajv.errorsText(v.errors, { separator: '\n' });
}
/** Validates one alert of `waitgraph run` (its finding refers to the finding schema by $id). */
export const validateAlert = ajv.compile(read('alert.schema.json'));
