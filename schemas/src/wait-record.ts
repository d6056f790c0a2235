/**
 * Wait records: the compact form in which the decode stage of a scaled-out processor republishes what the
 * detector needs from the spans it read (topic `waitgraph.waits`), so that every detection instance can
 * hold the whole wait graph without reading every span.
 *
 * One Kafka message holds one JSON object: a batch of spans and log events, cut down to the fields the
 * engine reads (ids, parent, name, kind, times, service and instance, the task attributes, and the events of
 * the wait vocabulary with their vocabulary attributes). Times are unix nanoseconds as JSON numbers (IEEE
 * doubles: exact to about 256 ns, as in the processor's span model). This module is the single source of the
 * TypeScript type and of `schemas/wait-record.schema.json` (`npm run schemas`).
 */
import { Type, type Static } from '@sinclair/typebox';
import { ATTR } from './wait-events.js';

/** The version of the wait-record format (the `v` field); bumped only for a change readers cannot take. */
export const WAIT_RECORD_VERSION = 1;

/** The default topic of wait records. */
export const DEFAULT_WAITS_TOPIC = 'waitgraph.waits';

/** The `content-type` header value of a wait-record message. */
export const WAIT_RECORD_CONTENT_TYPE = 'application/vnd.waitgraph.waits.v1+json';

const Hex = (len: number, description: string) => Type.String({ pattern: `^[0-9a-f]{${len}}$`, description });
const UnixNano = (description: string) => Type.Number({ minimum: 0, description: `${description}, unix nanoseconds` });
const AttrValue = Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Array(Type.Union([Type.String(), Type.Number(), Type.Boolean()]))]);
const Attrs = (description: string) => Type.Record(Type.String(), AttrValue, { description });

/** The resource of a group of spans: only the attributes that name the service instance. */
export const WaitResourceSchema = Type.Object(
  {
    [ATTR.SERVICE_NAME]: Type.Optional(Type.String()),
    [ATTR.SERVICE_INSTANCE_ID]: Type.Optional(Type.String()),
  },
  { additionalProperties: false, title: 'resource' },
);

/** One span event of the wait vocabulary. */
export const WaitRecordEventSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, description: 'the event name (`lock.wait`, ...): only names of the wait vocabulary' }),
    time: UnixNano('the event time'),
    attributes: Type.Optional(Attrs('the event attributes of the vocabulary (lock.id, pool.name, task.id, ...); others dropped')),
  },
  { additionalProperties: false, title: 'event' },
);

/** One span (or partial-span snapshot), cut down to what detection reads. */
export const WaitRecordSpanSchema = Type.Object(
  {
    resource: Type.Integer({ minimum: 0, description: 'index into the message resources' }),
    traceId: Hex(32, 'trace id'),
    spanId: Hex(16, 'span id'),
    parentSpanId: Type.Optional(Hex(16, 'parent span id; absent for a root span')),
    name: Type.String(),
    kind: Type.Integer({ minimum: 0, maximum: 5, description: 'OTLP span kind number (2 SERVER, 3 CLIENT)' }),
    start: UnixNano('the span start'),
    end: UnixNano('the span end; 0 while the span is open (a partial snapshot)'),
    attributes: Type.Optional(
      Attrs('the span attributes the contract gives meaning to: task.id, thread.id, task.detached, http.request.resend_count, component, span.partial'),
    ),
    events: Type.Optional(Type.Array(WaitRecordEventSchema, { description: 'the wait-vocabulary events of the span, in their span order' })),
  },
  { additionalProperties: false, title: 'span' },
);

/** One wait event that arrived as an OTLP log record. */
export const WaitRecordLogEventSchema = Type.Object(
  {
    resource: Type.Integer({ minimum: 0, description: 'index into the message resources' }),
    traceId: Hex(32, 'trace id of the span the event belongs to'),
    spanId: Hex(16, 'span id of the span the event belongs to'),
    name: Type.String({ minLength: 1, description: 'the event name (`event.name` of the record)' }),
    time: UnixNano('the event time'),
    attributes: Type.Optional(Attrs('the event attributes of the vocabulary')),
  },
  { additionalProperties: false, title: 'log event' },
);

/** One message of the wait-record topic. */
export const WaitRecordBatchSchema = Type.Object(
  {
    v: Type.Literal(WAIT_RECORD_VERSION, { description: 'format version' }),
    observedAtMs: Type.Number({
      minimum: 0,
      description:
        'when the input was first observed, unix ms: the earliest timestamp of the source records this message was made from. Detection uses it for the staleness rule, so a replay judges freshness as the first reading did.',
    }),
    sourceSpans: Type.Integer({ minimum: 0, description: 'spans the decode stage read to make this message, before filtering' }),
    sourceLogEvents: Type.Integer({ minimum: 0, description: 'wait events read from log records to make this message' }),
    resources: Type.Array(WaitResourceSchema),
    spans: Type.Array(WaitRecordSpanSchema),
    logEvents: Type.Array(WaitRecordLogEventSchema),
  },
  {
    $id: 'https://waitgraph.dev/schemas/wait-record.schema.json',
    title: 'waitgraph wait-record batch',
    description:
      'One message of the waitgraph.waits topic: the spans and log events a decode stage kept from one batch of OTLP input, cut down to what detection reads.',
    additionalProperties: false,
  },
);

/** One message of the wait-record topic. */
export type WaitRecordBatch = Static<typeof WaitRecordBatchSchema>;
/** One span of a wait-record batch. */
export type WaitRecordSpan = Static<typeof WaitRecordSpanSchema>;
/** One span event of a wait-record span. */
export type WaitRecordEvent = Static<typeof WaitRecordEventSchema>;
/** One log event of a wait-record batch. */
export type WaitRecordLogEvent = Static<typeof WaitRecordLogEventSchema>;
/** The resource of a group of wait records. */
export type WaitResource = Static<typeof WaitResourceSchema>;
