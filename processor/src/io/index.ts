/**
 * The processor's I/O adapters: sources (Kafka, OTLP/HTTP) and sinks (Kafka alert topic) around the engine,
 * and the metrics they report. None of them decodes or detects: they move bytes and batches, and the
 * wiring (`waitgraph run`) connects them to the decoders and the detector.
 */
export { ALERT_HEADERS, DEFAULT_ALERT_TOPIC, FINDING_CHANGES, KafkaAlertSink } from './kafka-alert-sink.js';
export type { AlertChange, FindingChangeKind, KafkaAlertSinkOptions } from './kafka-alert-sink.js';
export { brokerError, IDEMPOTENT_PRODUCER_RETRY, isKafkaJsError, kafkaClient, retrying, sleep } from './kafka-client.js';
export type { BackoffOptions, KafkaClientOptions, RetryControl } from './kafka-client.js';
export {
  DEAD_LETTER_HEADERS,
  DEFAULT_DEAD_LETTER_TOPIC,
  DEFAULT_SOURCE_TOPICS,
  KafkaSource,
  PAYLOAD_ENCODINGS,
  SIGNALS,
  traceIdFromKey,
} from './kafka-source.js';
export type {
  AssignedPartition,
  BatchInfo,
  DecodedMessage,
  KafkaSourceOptions,
  PayloadEncoding,
  Signal,
  SourceMessage,
  SourceMetrics,
  SourceStatus,
  SourceTopic,
} from './kafka-source.js';
export { kafkajsLogCreator, silentLogger, stderrLogger } from './log.js';
export type { LogFields, Logger } from './log.js';
export { BAD_INPUT_REASONS, DETECTION_LATENCY_BUCKETS, ProcessorMetrics } from './metrics.js';
export type { BadInputReason, ProcessorMetricsOptions } from './metrics.js';
export { encodeStatus, OtlpHttpReceiver } from './otlp-http.js';
export type { Health, OtlpContentType, OtlpHttpReceiverOptions, OtlpSignal } from './otlp-http.js';
