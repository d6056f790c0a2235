/**
 * Scenario tests: every recorded incident in test/fixtures/scenarios/ is decoded and replayed through the
 * detector, and must give exactly the findings test/fixtures/scenario-expectations.json names; every finding must follow the
 * schema. Then the same spans in other orders, duplicated and in chunks must give the same findings.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Finding } from '../schemas/index.js';
import { decodeFile } from '../processor/src/decode/index.js';
import { Detector } from '../processor/src/engine/index.js';
import type { SpanRecord } from '../processor/src/model/span.js';
import { schemaErrors, validateFinding } from './support/schemas.js';

const DIR = new URL('./fixtures/scenarios/', import.meta.url);
interface Expected {
  kind: string;
  state?: string;
  resources: string[];
  services: string[];
  coreTasks: number;
  victims?: number;
}
const expectations: Record<string, Expected[]> = JSON.parse(readFileSync(new URL('../scenario-expectations.json', DIR), 'utf8'));
const files = readdirSync(DIR).filter((f) => f.endsWith('.json')).sort();

function analyze(spans: SpanRecord[], chunks = 1): Finding[] {
  const d = new Detector();
  const size = Math.ceil(spans.length / chunks);
  for (let i = 0; i < spans.length; i += size) {
    d.addSpans(spans.slice(i, i + size));
    d.detect();
  }
  return d.findings();
}

function summary(f: Finding): Expected {
  const out: Expected = { kind: f.kind, resources: f.resources, services: f.services, coreTasks: f.tasks.length };
  if (f.state) out.state = f.state;
  if (f.victims) out.victims = f.victims.count;
  return out;
}

/** A deterministic shuffle (xorshift), so a failure names its seed. */
function shuffled<T>(xs: T[], seed: number): T[] {
  const out = [...xs];
  let s = seed || 1;
  for (let i = out.length - 1; i > 0; i--) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    const j = Math.abs(s) % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

describe('scenario fixtures', () => {
  it('has an expectation for every fixture', () => {
    expect(files.length).toBeGreaterThanOrEqual(17);
    expect(Object.keys(expectations).sort()).toEqual(files);
  });

  for (const file of files) {
    describe(file, () => {
      it('gives exactly the expected findings, each following the schema', async () => {
        const { spans } = await decodeFile(new URL(file, DIR).pathname);
        const findings = analyze(spans);
        expect(findings.map(summary)).toEqual(expectations[file]);
        for (const f of findings) {
          expect(validateFinding(f), schemaErrors(validateFinding)).toBe(true);
          expect(f.links.length).toBeGreaterThan(0);
          expect(f.chain.length).toBeGreaterThan(0);
          // Every task's span has a link.
          for (const t of f.tasks) expect(f.links.some((l) => l.traceId === t.traceId && l.spanId === t.spanId)).toBe(true);
        }
      });

      it('gives the same findings in any order, duplicated, and fed in chunks', async () => {
        const { spans } = await decodeFile(new URL(file, DIR).pathname);
        const clean = analyze(spans);
        for (const seed of [1, 7, 42]) {
          const messy = shuffled([...spans, ...shuffled(spans, seed + 100)], seed);
          expect(analyze(messy), `seed ${seed}`).toEqual(clean);
          // Fed in chunks with detection in between, as the live processor does: the deadlocks still
          // open at the end are the same ones.
          const active = (fs: Finding[]) => fs.filter((f) => f.state === 'active').map((f) => f.fingerprint).sort();
          expect(active(analyze(messy, 5)), `seed ${seed}, chunked`).toEqual(active(clean));
        }
      });
    });
  }
});
