/**
 * The scenario fixtures themselves: every wait event in them follows the wait-event schema, the
 * committed files are what scripts/gen-fixtures.ts generates, and expectations.json covers every
 * fixture and names only resources and services that the fixture records. The engine is tested
 * against these expectations elsewhere.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { ATTR, DEADLOCK_STATES, EVENT_NAMES, FINDING_KINDS } from '../schemas/index.js';
import { EXPECTATIONS_FILE, SCENARIO_DIR, generateFixtures, type ExpectedFinding } from '../scripts/gen-fixtures.js';
import type { OtlpAnyValue, OtlpKeyValue, OtlpTracesData } from './support/trace-builder.js';

type Json = string | number | boolean | Json[];

/** OTLP JSON AnyValue to plain JSON, as the schema's flat event form wants it. */
function plain(v: OtlpAnyValue): Json {
  if ('stringValue' in v) return v.stringValue;
  if ('intValue' in v) return Number(v.intValue);
  if ('doubleValue' in v) return v.doubleValue;
  if ('boolValue' in v) return v.boolValue;
  return v.arrayValue.values.map(plain);
}

function attrs(kvs: OtlpKeyValue[]): Record<string, Json> {
  return Object.fromEntries(kvs.map((kv) => [kv.key, plain(kv.value)]));
}

const files = readdirSync(SCENARIO_DIR).sort();
const fixtures = files.filter((f) => f.endsWith('.json') && f !== EXPECTATIONS_FILE);
const load = (file: string): unknown => JSON.parse(readFileSync(new URL(file, SCENARIO_DIR), 'utf8'));
const expectations = load(EXPECTATIONS_FILE) as Record<string, ExpectedFinding[]>;
const eventNames = new Set<string>(EVENT_NAMES);

describe('scenario fixtures', () => {
  const schema = JSON.parse(readFileSync(new URL('../schemas/wait-events.schema.json', import.meta.url), 'utf8'));
  const validate = new Ajv({ strict: false, allErrors: true }).compile(schema);

  it('exist: eleven incident shapes and the traps', () => {
    expect(fixtures.filter((f) => /^\d\d/.test(f)).length).toBeGreaterThanOrEqual(12);
    expect(fixtures.filter((f) => f.startsWith('trap-')).length).toBeGreaterThanOrEqual(5);
  });

  it.each(fixtures)('%s: plain OTLP JSON whose wait events follow the schema', (file) => {
    const data = load(file) as OtlpTracesData;
    expect(Object.keys(data)).toEqual(['resourceSpans']);
    let waitEvents = 0;
    for (const rs of data.resourceSpans) {
      expect(attrs(rs.resource.attributes)[ATTR.SERVICE_NAME]).toEqual(expect.any(String));
      for (const span of rs.scopeSpans.flatMap((s) => s.spans)) {
        expect(span.traceId).toMatch(/^[0-9a-f]{32}$/);
        expect(span.spanId).toMatch(/^[0-9a-f]{16}$/);
        if (span.parentSpanId !== undefined) expect(span.parentSpanId).toMatch(/^[0-9a-f]{16}$/);
        const open = span.endTimeUnixNano === '0';
        // An open span in a recording is a partial-span snapshot, and only those are marked partial.
        expect(attrs(span.attributes)[ATTR.SPAN_PARTIAL], `${span.name} ${span.spanId}`).toBe(open ? true : undefined);
        if (!open) expect(BigInt(span.endTimeUnixNano) >= BigInt(span.startTimeUnixNano)).toBe(true);
        for (const e of span.events) {
          if (!eventNames.has(e.name)) continue;
          waitEvents++;
          const flat = { name: e.name, timeUnixNano: e.timeUnixNano, attributes: attrs(e.attributes) };
          const ok = validate(flat);
          expect(ok, `${file} ${span.name}: ${e.name} ${JSON.stringify(validate.errors?.slice(0, 3))}`).toBe(true);
        }
      }
    }
    expect(waitEvents).toBeGreaterThan(0);
  });

  it('are what scripts/gen-fixtures.ts generates', () => {
    const generated = generateFixtures();
    expect(files).toEqual(Object.keys(generated).filter((f) => f !== EXPECTATIONS_FILE).sort());
    for (const [file, text] of Object.entries(generated)) {
      expect(readFileSync(new URL(file, SCENARIO_DIR), 'utf8'), `${file} is stale: run npx tsx scripts/gen-fixtures.ts`).toBe(text);
    }
  });
});

describe('scenario-expectations.json', () => {
  it('has an entry for every fixture and none for a missing one', () => {
    expect(Object.keys(expectations).sort()).toEqual(fixtures);
  });

  it('expects nothing of the traps and something of every incident', () => {
    for (const [file, findings] of Object.entries(expectations)) {
      expect(findings.length === 0, file).toBe(file.startsWith('trap-'));
    }
  });

  it('gives the reordered, duplicated delivery the findings of the clean feed', () => {
    expect(expectations['12-reordered-duplicated.json']).toEqual(expectations['01-cross-service-ab-ba.json']);
  });

  it.each(Object.entries(expectations).filter(([, f]) => f.length > 0))('%s: well-formed findings', (file, findings) => {
    const data = load(file) as OtlpTracesData;
    const services = new Set(data.resourceSpans.map((rs) => attrs(rs.resource.attributes)[ATTR.SERVICE_NAME]));
    const resources = new Set<Json>();
    const tasks = new Set<string>();
    for (const rs of data.resourceSpans) {
      for (const span of rs.scopeSpans.flatMap((s) => s.spans)) {
        tasks.add(span.spanId);
        for (const e of span.events) {
          const a = attrs(e.attributes);
          for (const k of [ATTR.LOCK_ID, ATTR.POOL_NAME, ATTR.CERT_ID]) if (a[k] !== undefined) resources.add(a[k]);
        }
      }
    }
    for (const f of findings) {
      expect(FINDING_KINDS).toContain(f.kind);
      if (f.kind === 'deadlock') {
        expect(DEADLOCK_STATES).toContain(f.state);
        expect(f.victims).toBeGreaterThanOrEqual(0);
      } else {
        expect(f.state).toBeUndefined();
        expect(f.victims).toBeUndefined();
      }
      expect(f.resources).toEqual([...f.resources].sort());
      expect(f.services).toEqual([...f.services].sort());
      for (const r of f.resources) expect(resources, `${file}: resource ${r}`).toContain(r);
      for (const s of f.services) expect(services, `${file}: service ${s}`).toContain(s);
      expect(f.coreTasks).toBeGreaterThanOrEqual(1);
      // The core and its victims are tasks of the recording, and a task is at most one span.
      expect(f.coreTasks + (f.victims ?? 0)).toBeLessThanOrEqual(tasks.size);
    }
  });
});
