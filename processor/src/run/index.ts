/**
 * `waitgraph run`: the long-running processor around the engine. The command, the processor object for
 * embedding and tests, its options, and the alert format's helpers.
 */
export { RUN_HELP, runCommand } from './command.js';
export { DEMO_INCIDENT, retimed, runDemo } from './demo.js';
export { decodeOtlpPayload } from './decode-input.js';
export { kafkaInput } from './kafka-input.js';
export type { KafkaInputOptions } from './kafka-input.js';
export { KafkaThread, KafkaThreadInput } from './kafka-thread.js';
export type { KafkaThreadInputOptions } from './kafka-thread.js';
export { CutFrameWriter, frameTransfer, readCutFrame } from './cut-frame.js';
export type { CutFrame } from './cut-frame.js';
export { goneFinding, renderAlertText, toAlert } from './alerts.js';
export type { AlertSource } from './alerts.js';
export { ensureAlertTopic, readAlertTopic } from './alert-topic.js';
export { AlertLedger, isAlertLike, readAlertFile } from './ledger.js';
export type { LedgerEntry } from './ledger.js';
export { createLogger, formatRecord } from './logger.js';
export type { RunLogger, RunLoggerOptions } from './logger.js';
export {
  envName,
  LOG_FORMATS,
  LOG_LEVELS,
  OPTION_SPECS,
  optionsFromEnv,
  optionsFromFlags,
  parseDuration,
  readConfigFile,
  resolveRunOptions,
  RunOptionsSchema,
  STDOUT_FORMATS,
} from './options.js';
export type { Duration, LogFormat, LogLevel, OptionSpec, ResolvedRunOptions, RunOptions, StdoutFormat } from './options.js';
export { DetectionPipeline } from './pipeline.js';
export type { PipelineCounts, PipelineOptions } from './pipeline.js';
export { WaitgraphProcessor } from './processor.js';
export type { ProcessorAddress, ProcessorContext, ProcessorPhase } from './processor.js';
export { HTTP_LANE, ReplayOrder } from './replay.js';
export type { TimedBatch } from './replay.js';
export { FileAlertSink, KafkaTopicAlertSink, StdoutAlertSink } from './sinks.js';
export type { AlertSink } from './sinks.js';
export { WAITGRAPH_VERSION } from './version.js';
export { cutDecoded, WaitInputCutter } from './wait-input.js';
export type { KeptInput, OtlpPayload, WaitInput } from './wait-input.js';
