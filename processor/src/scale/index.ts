/**
 * Scale-out: a stateless decode stage that republishes compact wait records, and a detection stage in
 * every instance that holds the whole wait graph and announces only the findings it owns. See
 * docs/architecture.md.
 */
export { AlertTail, parseAnnouncement } from './alert-tail.js';
export type { AlertTailOptions, Announcement, AnnouncementLedger } from './alert-tail.js';
export { DecodeStage, decodeSourceMessage, DEFAULT_DECODE_GROUP } from './decode-stage.js';
export type { DecodeStageMetrics, DecodeStageOptions } from './decode-stage.js';
export { DecodeStageThread } from './decode-thread.js';
export type { DecodeStageThreadOptions } from './decode-thread.js';
export { DetectStage } from './detect-stage.js';
export type { DetectStageCounts, DetectStageOptions } from './detect-stage.js';
export { DEFAULT_OWNERSHIP_GROUP, Ownership, ownerPartition } from './ownership.js';
export type { OwnershipOptions } from './ownership.js';
export { ensureTopics } from './topics.js';
export type { TopicSpec } from './topics.js';
export { decodeWaitRecordBatch, encodeWaitRecordBatch, selectWaitSpans, WaitRecordBuilder } from './wait-records.js';
export type { DecodedWaitRecords, WaitFilterOptions, WaitRecordCounts } from './wait-records.js';
export { ROLES, ScaleProcessor } from './role.js';
export type { Role, ScaleOptions } from './role.js';
