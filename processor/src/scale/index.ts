/**
 * Scale-out: a stateless decode stage that republishes compact wait records, and a detection stage in
 * every instance that holds the whole wait graph and publishes only the findings it owns. See
 * docs/architecture.md.
 */
export { decodeWaitRecordBatch, encodeWaitRecordBatch, selectWaitSpans, WaitRecordBuilder } from './wait-records.js';
export type { DecodedWaitRecords, WaitFilterOptions, WaitRecordCounts } from './wait-records.js';
