/**
 * A finding: one deadlock (active or resolved) or one potential deadlock (a lock-order inversion).
 *
 * The same object is printed by `waitgraph analyze --json` and published as an alert. This module is the
 * single source of its TypeScript type and of `schemas/finding.schema.json` (`npm run schemas`).
 */
import { Type, type Static } from '@sinclair/typebox';
import { LOCK_MODES, TASK_WAIT_MODES } from './wait-events.js';

/** Kinds of finding. */
export const FINDING_KINDS = ['deadlock', 'potential-deadlock'] as const;
/** A kind of finding. */
export type FindingKind = (typeof FINDING_KINDS)[number];

/** States of a deadlock finding. */
export const DEADLOCK_STATES = ['active', 'resolved'] as const;
/** A state of a deadlock finding. */
export type DeadlockState = (typeof DEADLOCK_STATES)[number];

/** What a task waits for, as kinds of edge in the wait-for graph. */
export const WAIT_KINDS = ['lock', 'pool', 'rpc', 'cert', 'task', 'child'] as const;
/** A kind of wait. */
export type WaitKind = (typeof WAIT_KINDS)[number];

/** What a task holds. */
export const HOLD_KINDS = ['lock', 'pool', 'cert'] as const;
/** A kind of hold. */
export type HoldKind = (typeof HOLD_KINDS)[number];

const Hex = (len: number) => Type.String({ pattern: `^[0-9a-f]{${len}}$` });
const Time = Type.String({ format: 'date-time', description: 'RFC 3339 time, UTC' });

/** A reference to a task: enough to find it in its service and in Jaeger. */
export const TaskRefSchema = Type.Object(
  {
    service: Type.String({ minLength: 1, description: 'service.name of the span resource' }),
    serviceInstance: Type.Optional(Type.String({ description: 'service.instance.id, where set' })),
    taskId: Type.String({ minLength: 1, description: 'task.id, thread.id, or the span id where the task is its span' }),
    traceId: Hex(32),
    spanId: Hex(16),
    spanName: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);
/** A reference to a task. */
export type TaskRef = Static<typeof TaskRefSchema>;

/** One wait of a task, as the finding shows it. */
export const WaitSchema = Type.Object(
  {
    kind: Type.Union(WAIT_KINDS.map((k) => Type.Literal(k))),
    resource: Type.Optional(Type.String({ description: 'lock.id, pool.name or cert.id' })),
    mode: Type.Optional(Type.Union([...LOCK_MODES, ...TASK_WAIT_MODES].map((m) => Type.Literal(m)))),
    on: Type.Optional(Type.Array(Type.String(), { description: 'the tasks this wait needs, as finding task keys' })),
    since: Time,
    spanId: Hex(16),
  },
  { additionalProperties: false },
);
/** One wait of a task. */
export type Wait = Static<typeof WaitSchema>;

/** One hold of a task. */
export const HoldSchema = Type.Object(
  {
    kind: Type.Union(HOLD_KINDS.map((k) => Type.Literal(k))),
    resource: Type.String(),
    mode: Type.Optional(Type.Union(LOCK_MODES.map((m) => Type.Literal(m)))),
    count: Type.Optional(Type.Integer({ minimum: 1, description: 'pool units held' })),
    since: Time,
  },
  { additionalProperties: false },
);
/** One hold of a task. */
export type Hold = Static<typeof HoldSchema>;

/** A task in a finding: who it is, what it waits for and what it holds. */
export const FindingTaskSchema = Type.Composite(
  [
    TaskRefSchema,
    Type.Object({
      key: Type.String({ description: 'the task key used in `on` lists and chains' }),
      waitsFor: Type.Array(WaitSchema),
      holds: Type.Array(HoldSchema),
    }),
  ],
  { additionalProperties: false },
);
/** A task in a finding. */
export type FindingTask = Static<typeof FindingTaskSchema>;

/** A Jaeger link for one span. */
export const LinkSchema = Type.Object(
  {
    traceId: Hex(32),
    spanId: Hex(16),
    url: Type.String({ description: '<base>/trace/<traceId>?uiFind=<spanId>' }),
  },
  { additionalProperties: false },
);
/** A Jaeger link for one span. */
export type Link = Static<typeof LinkSchema>;

/** The event that broke a resolved deadlock. */
export const BrokenBySchema = Type.Object(
  {
    event: Type.String({ description: 'the wait-ending event: lock.timeout, task.timeout, ..., or span.end' }),
    task: TaskRefSchema,
    at: Time,
  },
  { additionalProperties: false },
);

/** One task's side of a lock-order inversion. */
export const OrderSchema = Type.Object(
  {
    task: TaskRefSchema,
    first: Type.String({ description: 'lock held' }),
    then: Type.String({ description: 'lock acquired while holding `first`' }),
    at: Time,
  },
  { additionalProperties: false },
);

/** A finding. */
export const FindingSchema = Type.Object(
  {
    kind: Type.Union(FINDING_KINDS.map((k) => Type.Literal(k))),
    state: Type.Optional(Type.Union(DEADLOCK_STATES.map((s) => Type.Literal(s)), { description: 'deadlocks only' })),
    fingerprint: Hex(16),
    summary: Type.String({ description: 'one line for people' }),
    chain: Type.Array(Type.String(), { description: 'plain-language lines, one per task, in cycle order' }),
    resources: Type.Array(Type.String(), { description: 'sorted lock.id, pool.name and cert.id values of the core' }),
    services: Type.Array(Type.String(), { description: 'sorted service names of the core' }),
    tasks: Type.Array(FindingTaskSchema, { description: 'the core: tasks that can never go on by themselves' }),
    victims: Type.Optional(
      Type.Object(
        { count: Type.Integer({ minimum: 0 }), tasks: Type.Array(TaskRefSchema) },
        { additionalProperties: false, description: 'deadlocks: tasks blocked behind the core' },
      ),
    ),
    links: Type.Array(LinkSchema),
    formedAt: Type.Optional(Time),
    resolvedAt: Type.Optional(Time),
    durationMs: Type.Optional(Type.Number({ minimum: 0 })),
    brokenBy: Type.Optional(BrokenBySchema),
    orders: Type.Optional(Type.Array(OrderSchema, { description: 'potential deadlocks: the conflicting orders' })),
  },
  {
    $id: 'https://waitgraph.dev/schemas/finding.schema.json',
    title: 'waitgraph finding',
    additionalProperties: false,
    allOf: [
      {
        if: { properties: { kind: { const: 'deadlock' } } },
        then: { required: ['state', 'victims'] },
        else: { not: { required: ['state'] }, required: ['orders'] },
      },
      {
        if: { properties: { state: { const: 'resolved' } }, required: ['state'] },
        then: { required: ['formedAt', 'resolvedAt', 'durationMs', 'brokenBy'] },
      },
    ],
  },
);
/** A finding. */
export type Finding = Static<typeof FindingSchema>;

/** What `waitgraph analyze --json` prints. */
export const AnalyzeOutputSchema = Type.Object(
  { findings: Type.Array(Type.Unsafe<Finding>({ $ref: FindingSchema.$id })) },
  { $id: 'https://waitgraph.dev/schemas/analyze-output.schema.json', title: 'waitgraph analyze --json', additionalProperties: false },
);
/** What `waitgraph analyze --json` prints. */
export type AnalyzeOutput = Static<typeof AnalyzeOutputSchema>;
