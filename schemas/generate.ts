/**
 * Writes the JSON Schema files of `schemas/` from their TypeScript source.
 * `npm run schemas` writes them; `--check` exits 1 when a committed file differs from its source.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
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
  const check = process.argv.includes('--check');
  let stale = 0;
  for (const [file, text] of Object.entries(generatedSchemas())) {
    const path = new URL(file, import.meta.url);
    if (check) {
      let old = '';
      try {
        old = readFileSync(path, 'utf8');
      } catch {}
      if (old !== text) {
        console.error(`schemas/${file} is out of date: run npm run schemas`);
        stale++;
      }
    } else {
      writeFileSync(path, text);
      console.log(`wrote schemas/${file}`);
    }
  }
  process.exit(stale ? 1 : 0);
}
