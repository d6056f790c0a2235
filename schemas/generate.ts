/**
 * Writes the JSON Schema files of `schemas/` from their TypeScript source.
 * `npm run schemas` writes them; `--check` exits 1 when a committed file differs from its source.
 */
import { fileURLToPath } from 'node:url';
import { writeOrCheck } from '../scripts/lib/generated.js';
import { AlertSchema, AnalyzeOutputSchema, FindingSchema, SpanAttributesSchema, WaitEventSchema, WaitRecordBatchSchema } from './index.js';

const outputs: Record<string, unknown> = {
  'wait-events.schema.json': { ...WaitEventSchema, definitions: { spanAttributes: SpanAttributesSchema } },
  'finding.schema.json': FindingSchema,
  'analyze-output.schema.json': AnalyzeOutputSchema,
  'wait-record.schema.json': WaitRecordBatchSchema,
  'alert.schema.json': AlertSchema,
};

/** The generated text of every schema file, by file name. */
export function generatedSchemas(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [file, schema] of Object.entries(outputs)) {
    out[file] = JSON.stringify({ $schema: 'http://json-schema.org/draft-07/schema#', ...(schema as object) }, null, 2) + '\n';
  }
  return out;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeOrCheck(generatedSchemas(), new URL('.', import.meta.url), 'schemas/', 'npm run schemas');
}
