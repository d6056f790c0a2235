/**
 * An alert: one change of one finding, as `waitgraph run` publishes it to the alert topic (keyed by the
 * fingerprint), to the JSON-lines alert file and, with `--json`, to stdout.
 *
 * A deadlock gives two alerts in its life: `opened` when it forms and `resolved` when it breaks (a timeout,
 * a cancel, or its spans going stale). A potential deadlock (a lock-order inversion) gives one, `potential`.
 * The same deadlock is never announced twice, across restarts too: a consumer may treat the alert topic's
 * latest message per key as the finding's current state. This module is the single source of the TypeScript
 * type and of `schemas/alert.schema.json` (`npm run schemas`).
 */
import { Type, type Static } from '@sinclair/typebox';
import { FindingSchema, type Finding } from './finding.js';

/** The version of the alert format; bumped only for a change that breaks consumers. */
export const ALERT_SCHEMA_VERSION = 1;

/** Changes of a finding that are alerted. */
export const ALERT_CHANGES = ['opened', 'resolved', 'potential'] as const;
/** A change of a finding that is alerted. */
export type AlertChangeKind = (typeof ALERT_CHANGES)[number];

/** One alert. */
export const AlertSchema = Type.Object(
  {
    schemaVersion: Type.Literal(ALERT_SCHEMA_VERSION),
    change: Type.Union(ALERT_CHANGES.map((c) => Type.Literal(c)), {
      description: 'opened: a deadlock formed; resolved: it broke; potential: a lock-order inversion was seen',
    }),
    at: Type.String({ format: 'date-time', description: 'when the detector published the alert, RFC 3339, UTC' }),
    fingerprint: Type.String({ pattern: '^[0-9a-f]{16}$', description: "the finding's fingerprint, also the message key" }),
    finding: Type.Unsafe<Finding>({ $ref: FindingSchema.$id }),
    detector: Type.Object(
      {
        instance: Type.String({ minLength: 1, description: 'the processor instance (--instance-id; default the host name)' }),
        version: Type.String({ minLength: 1, description: 'the waitgraph version' }),
      },
      { additionalProperties: false },
    ),
    detectionLatencyMs: Type.Optional(
      Type.Number({
        minimum: 0,
        description: 'ms from receiving the input that completed the finding to building this alert; absent when a timer or a restart found it',
      }),
    ),
  },
  {
    $id: 'https://waitgraph.dev/schemas/alert.schema.json',
    title: 'waitgraph alert',
    additionalProperties: false,
    allOf: [
      // The change and the finding agree: an opened alert carries an active deadlock, and so on.
      {
        if: { properties: { change: { const: 'opened' } } },
        then: { properties: { finding: { properties: { kind: { const: 'deadlock' }, state: { const: 'active' } }, required: ['state'] } } },
      },
      {
        if: { properties: { change: { const: 'resolved' } } },
        then: { properties: { finding: { properties: { kind: { const: 'deadlock' }, state: { const: 'resolved' } }, required: ['state'] } } },
      },
      {
        if: { properties: { change: { const: 'potential' } } },
        then: { properties: { finding: { properties: { kind: { const: 'potential-deadlock' } } } } },
      },
    ],
  },
);
/** One alert. */
export type Alert = Static<typeof AlertSchema>;
