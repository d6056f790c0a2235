/**
 * The Kafka input of `waitgraph run`: a Kafka source whose messages are decoded and cut to what detection
 * reads (wait-input.ts), and whose batches go to the detection pipeline with their record timestamps (the
 * time a span was observed: for replayed input, long before now). The processor and the Kafka benchmark
 * both build it here, so the benchmark measures the processor's own path.
 */
import { KafkaSource, type AssignedPartition, type BatchInfo, type KafkaSourceOptions, type SourceMessage } from '../io/index.js';
import type { DetectionPipeline } from './pipeline.js';
import type { OtlpPayload, WaitInput, WaitInputCutter } from './wait-input.js';

/** Options of `kafkaInput`: the source's, but for decoding and applying, which it wires itself. */
export interface KafkaInputOptions extends Omit<KafkaSourceOptions<WaitInput>, 'decode' | 'apply' | 'beforeCommit'> {
  /** Decodes and cuts the messages. Required. */
  cutter: WaitInputCutter;
  /** Takes the batches, and the partitions assigned (before `onAssign` is called). Required. */
  pipeline: DetectionPipeline;
}

/** A Kafka source feeding the pipeline; not started. */
export function kafkaInput(options: KafkaInputOptions): KafkaSource<WaitInput> {
  const { cutter, pipeline, onAssign, ...source } = options;
  return new KafkaSource<WaitInput>({
    ...source,
    onAssign: (partitions: AssignedPartition[]) => {
      pipeline.assign(partitions);
      onAssign?.(partitions);
    },
    decode: (m) => cutter.cut(payloadOf(m)),
    // Taken in now, detected on with the fetch's other batches; committed once their alerts are out.
    beforeCommit: () => pipeline.settled(),
    apply: (messages, info) =>
      takeBatch(
        pipeline,
        messages.map((m) => m.value),
        messages.map((m) => m.message.timestampMs),
        info,
      ),
  });
}

/** A Kafka message as the cut takes it. */
export function payloadOf(m: SourceMessage): OtlpPayload {
  return { signal: m.signal, encoding: m.encoding === 'otlp_json' ? 'json' : 'proto', bytes: m.value, name: m.name };
}

/**
 * A batch's cut inputs into the pipeline, in its partition's lane, each with its record time (the time a
 * span was observed: for replayed input, long before now).
 */
export function takeBatch(pipeline: DetectionPipeline, inputs: readonly WaitInput[], observedAtMs: readonly number[], info: BatchInfo): Promise<void> {
  return pipeline.take(
    `${info.topic}/${info.partition}`,
    inputs.map((held, k) => ({ batch: held.batch, observedAtMs: observedAtMs[k]!, held })),
    info.receivedAtMs,
    info.lastOffset,
    BigInt(info.highWatermark) > BigInt(info.lastOffset) + 1n,
  );
}
