/**
 * The wire formats of waitgraph: event and attribute names, TypeScript types, and the JSON Schemas they
 * are generated into. Imported by both `instrumentation/` and `processor/`.
 */
export {
  ATTR,
  EVENT,
  EVENT_NAMES,
  EventSchemas,
  LOCK_KINDS,
  LOCK_MODES,
  PROXY_COMPONENT,
  SpanAttributesSchema,
  TASK_WAIT_MODES,
  WaitEventSchema,
} from './src/wait-events.js';
export type { AttrName, EventName, LockMode, SpanAttributes, TaskWaitMode, WaitEvent } from './src/wait-events.js';
export { ERROR_CODES, WaitgraphError } from './src/errors.js';
export type { ErrorCode, WaitgraphErrorOptions } from './src/errors.js';
export {
  AnalyzeOutputSchema,
  DEADLOCK_STATES,
  FINDING_KINDS,
  FindingSchema,
  HOLD_KINDS,
  WAIT_KINDS,
} from './src/finding.js';
export type {
  AnalyzeOutput,
  DeadlockState,
  Finding,
  FindingKind,
  FindingTask,
  Hold,
  HoldKind,
  Link,
  TaskRef,
  Wait,
  WaitKind,
} from './src/finding.js';
export { ALERT_CHANGES, ALERT_SCHEMA_VERSION, AlertSchema } from './src/alert.js';
export type { Alert, AlertChangeKind } from './src/alert.js';
export {
  DEFAULT_WAITS_TOPIC,
  WAIT_RECORD_CONTENT_TYPE,
  WAIT_RECORD_VERSION,
  WaitRecordBatchSchema,
  WaitRecordEventSchema,
  WaitRecordLogEventSchema,
  WaitRecordSpanSchema,
  WaitResourceSchema,
} from './src/wait-record.js';
export type { WaitRecordBatch, WaitRecordEvent, WaitRecordLogEvent, WaitRecordSpan, WaitResource } from './src/wait-record.js';
