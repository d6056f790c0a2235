/**
 * The wait-event vocabulary: the contract between emitters and the detector.
 *
 * This module is the single source of the event names, the attribute names, the TypeScript types of a
 * wait event and the JSON Schema that `schemas/wait-events.schema.json` is generated from
 * (`npm run schemas`). It follows `shared/spec/wait-events.md` (v0). Names may be added, never renamed
 * or dropped: every v0 emitter must keep working.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';

/** Event names of the v0 vocabulary, and the extensions waitgraph adds. */
export const EVENT = {
  LOCK_WAIT: 'lock.wait',
  LOCK_ACQUIRE: 'lock.acquire',
  LOCK_RELEASE: 'lock.release',
  LOCK_TIMEOUT: 'lock.timeout',
  POOL_WAIT: 'pool.wait',
  POOL_CHECKOUT: 'pool.checkout',
  POOL_CHECKIN: 'pool.checkin',
  POOL_TIMEOUT: 'pool.timeout',
  RPC_WAIT: 'rpc.wait',
  RPC_DONE: 'rpc.done',
  RPC_TIMEOUT: 'rpc.timeout',
  CERT_WAIT: 'cert.wait',
  CERT_ISSUE: 'cert.issue',
  CERT_READY: 'cert.ready',
  CERT_TIMEOUT: 'cert.timeout',
  TASK_WAIT: 'task.wait',
  TASK_RESUME: 'task.resume',
  TASK_TIMEOUT: 'task.timeout',
} as const;

/** Any event name of the vocabulary. */
export type EventName = (typeof EVENT)[keyof typeof EVENT];

/** All event names, in the order of the spec's table. */
export const EVENT_NAMES: readonly EventName[] = Object.values(EVENT);

/** Attribute names used on wait events and on the spans that carry them. */
export const ATTR = {
  TASK_ID: 'task.id',
  TASK_DETACHED: 'task.detached',
  THREAD_ID: 'thread.id',
  LOCK_ID: 'lock.id',
  LOCK_MODE: 'lock.mode',
  LOCK_KIND: 'lock.kind',
  POOL_NAME: 'pool.name',
  POOL_SIZE: 'pool.size',
  RPC_PEER_SERVICE: 'rpc.peer.service',
  CERT_ID: 'cert.id',
  CERT_ISSUER: 'cert.issuer',
  TASK_WAIT_ON: 'task.wait.on',
  TASK_WAIT_MODE: 'task.wait.mode',
  SPAN_PARTIAL: 'span.partial',
  /** OTel semantic conventions: the retry attempt number of an HTTP client request. */
  HTTP_RESEND_COUNT: 'http.request.resend_count',
  /** Marks a span of a service-mesh proxy (a hop). */
  COMPONENT: 'component',
  SERVICE_NAME: 'service.name',
  SERVICE_INSTANCE_ID: 'service.instance.id',
} as const;

/** Any attribute name of the vocabulary. */
export type AttrName = (typeof ATTR)[keyof typeof ATTR];

/** Values of `lock.mode`. */
export const LOCK_MODES = ['exclusive', 'shared'] as const;
/** A lock mode; `exclusive` where the attribute is absent. */
export type LockMode = (typeof LOCK_MODES)[number];

/** Values of `task.wait.mode`. */
export const TASK_WAIT_MODES = ['all', 'any'] as const;
/** A join mode; `all` where the attribute is absent. */
export type TaskWaitMode = (typeof TASK_WAIT_MODES)[number];

/** Well-known values of `lock.kind`; others are allowed. */
export const LOCK_KINDS = ['mutex', 'rwlock', 'monitor', 'row', 'advisory', 'semaphore'] as const;

/** The value of `component` that marks a proxy span. */
export const PROXY_COMPONENT = 'proxy';

const NonEmpty = Type.String({ minLength: 1 });
const LockMode = Type.Union(LOCK_MODES.map((m) => Type.Literal(m)));
const TaskWaitMode = Type.Union(TASK_WAIT_MODES.map((m) => Type.Literal(m)));
const PoolSize = Type.Integer({ minimum: 1 });

/** Attributes that may stand on any wait event (task identity). */
const taskAttributes = {
  [ATTR.TASK_ID]: Type.Optional(NonEmpty),
  [ATTR.THREAD_ID]: Type.Optional(Type.Union([Type.Integer(), NonEmpty])),
};

function event<N extends EventName, P extends Record<string, TSchema>>(name: N, description: string, props: P) {
  return Type.Object(
    {
      name: Type.Literal(name),
      timeUnixNano: Type.Optional(Type.String({ pattern: '^[0-9]+$', description: 'event time, unix nanoseconds' })),
      attributes: Type.Object({ ...taskAttributes, ...props }, { additionalProperties: true }),
    },
    { $id: `#/definitions/${name}`, title: name, description, additionalProperties: false },
  );
}

const lockAttrs = {
  [ATTR.LOCK_ID]: NonEmpty,
  [ATTR.LOCK_MODE]: Type.Optional(LockMode),
  [ATTR.LOCK_KIND]: Type.Optional(NonEmpty),
};
const poolAttrs = { [ATTR.POOL_NAME]: NonEmpty, [ATTR.POOL_SIZE]: Type.Optional(PoolSize) };
const certAttrs = { [ATTR.CERT_ID]: NonEmpty, [ATTR.CERT_ISSUER]: Type.Optional(NonEmpty) };
const taskWaitAttrs = {
  [ATTR.TASK_WAIT_ON]: Type.Array(NonEmpty, { minItems: 1 }),
  [ATTR.TASK_WAIT_MODE]: Type.Optional(TaskWaitMode),
};
const rpcWaitAttrs = {
  [ATTR.RPC_PEER_SERVICE]: Type.Optional(NonEmpty),
  [ATTR.POOL_NAME]: Type.Optional(NonEmpty),
};

/** One schema per event of the vocabulary. */
export const EventSchemas = {
  [EVENT.LOCK_WAIT]: event(EVENT.LOCK_WAIT, 'The task starts waiting for the lock.', lockAttrs),
  [EVENT.LOCK_ACQUIRE]: event(EVENT.LOCK_ACQUIRE, 'The task holds the lock; ends its wait for it.', lockAttrs),
  [EVENT.LOCK_RELEASE]: event(EVENT.LOCK_RELEASE, 'The hold ends.', { [ATTR.LOCK_ID]: NonEmpty }),
  [EVENT.LOCK_TIMEOUT]: event(EVENT.LOCK_TIMEOUT, 'The lock wait was abandoned.', lockAttrs),
  [EVENT.POOL_WAIT]: event(EVENT.POOL_WAIT, 'The task waits for any free unit of a pool.', poolAttrs),
  [EVENT.POOL_CHECKOUT]: event(EVENT.POOL_CHECKOUT, 'The task holds one unit; ends its wait.', poolAttrs),
  [EVENT.POOL_CHECKIN]: event(EVENT.POOL_CHECKIN, 'One unit held by the task is returned.', { [ATTR.POOL_NAME]: NonEmpty }),
  [EVENT.POOL_TIMEOUT]: event(EVENT.POOL_TIMEOUT, 'The pool wait was abandoned.', poolAttrs),
  [EVENT.RPC_WAIT]: event(EVENT.RPC_WAIT, 'On a CLIENT span: the task blocks until the reply.', rpcWaitAttrs),
  [EVENT.RPC_DONE]: event(EVENT.RPC_DONE, 'The reply (or an error) came; ends the rpc wait.', {}),
  [EVENT.RPC_TIMEOUT]: event(EVENT.RPC_TIMEOUT, 'The rpc wait was abandoned.', rpcWaitAttrs),
  [EVENT.CERT_WAIT]: event(EVENT.CERT_WAIT, 'The task waits for a certificate or secret to be issued.', certAttrs),
  [EVENT.CERT_ISSUE]: event(EVENT.CERT_ISSUE, 'The task starts producing that certificate.', { [ATTR.CERT_ID]: NonEmpty }),
  [EVENT.CERT_READY]: event(EVENT.CERT_READY, 'Issued: ends the issuing and every wait for it.', { [ATTR.CERT_ID]: NonEmpty }),
  [EVENT.CERT_TIMEOUT]: event(EVENT.CERT_TIMEOUT, 'The certificate wait was abandoned.', certAttrs),
  [EVENT.TASK_WAIT]: event(EVENT.TASK_WAIT, 'The task waits for other tasks: a join, a future, a channel.', taskWaitAttrs),
  [EVENT.TASK_RESUME]: event(EVENT.TASK_RESUME, "Ends the task's task.wait.", {}),
  [EVENT.TASK_TIMEOUT]: event(EVENT.TASK_TIMEOUT, 'The task wait was abandoned.', {
    [ATTR.TASK_WAIT_ON]: Type.Optional(Type.Array(NonEmpty)),
    [ATTR.TASK_WAIT_MODE]: Type.Optional(TaskWaitMode),
  }),
} satisfies Record<EventName, TSchema>;

/** A wait event in its flat form: the name, the time, and the attributes as plain JSON values. */
export const WaitEventSchema = Type.Union(
  EVENT_NAMES.map((n) => EventSchemas[n]),
  {
    $id: 'https://waitgraph.dev/schemas/wait-events.schema.json',
    title: 'waitgraph wait event',
    description:
      'A wait or hold event, as recorded on an OpenTelemetry span (or as an OTLP log record whose event.name is the name). v0 of shared/spec/wait-events.md.',
  },
);

/** A wait event in its flat form. */
export type WaitEvent = Static<typeof WaitEventSchema>;

/** Span attributes the contract gives meaning to. */
export const SpanAttributesSchema = Type.Object(
  {
    [ATTR.TASK_ID]: Type.Optional(NonEmpty),
    [ATTR.THREAD_ID]: Type.Optional(Type.Union([Type.Integer(), NonEmpty])),
    [ATTR.TASK_DETACHED]: Type.Optional(Type.Boolean()),
    [ATTR.SPAN_PARTIAL]: Type.Optional(Type.Boolean()),
    [ATTR.HTTP_RESEND_COUNT]: Type.Optional(Type.Integer({ minimum: 0 })),
    [ATTR.COMPONENT]: Type.Optional(Type.String()),
  },
  { additionalProperties: true, title: 'waitgraph span attributes' },
);
/** Span attributes the contract gives meaning to. */
export type SpanAttributes = Static<typeof SpanAttributesSchema>;
