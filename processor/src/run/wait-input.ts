/**
 * What `waitgraph run` takes of one input (a Kafka message or an OTLP/HTTP body): the OTLP payload decoded
 * and cut down to what detection reads, by the same rule and the same code as the decode stage of the
 * scale-out roles (`WaitRecordBuilder`: `selectWaitSpans`, then only the fields the engine reads, as wait
 * records), turned back into the records the engine takes without the round trip through JSON. Every
 * recorded incident gives the same findings this way as from its whole spans (test/scale/wait-records.test.ts);
 * on a typical workload half the spans and most of their attributes go, which the engine then never has to
 * take in. OTLP protobuf traces, the common input, take a fused path (`cutOtlpTracesProto`): the same cut,
 * but the spans it drops are never decoded into records (test/scale/wait-cut.test.ts holds the two alike).
 *
 * Pure: no I/O. `waitgraph run` cuts Kafka input on the Kafka thread (kafka-thread.ts), which hands the
 * records to the event loop as cut frames (cut-frame.ts), and OTLP/HTTP input on the event loop.
 */
import type { WaitRecordBatch } from '../../../schemas/index.js';
import { makeEvent, makeLogEvent, makeSpan } from '../decode/records.js';
import type { Attributes, DecodedBatch, SpanKind } from '../model/span.js';
import { cutOtlpTracesProto, cutOtlpTracesProtoKept, type KeptSpans } from '../scale/wait-cut.js';
import { NO_ATTRS, WAIT_SPAN_ATTRIBUTES, WaitRecordBuilder, type WaitFilterOptions } from '../scale/wait-records.js';
import { decodeOtlpPayload } from './decode-input.js';

/** An input cut down to what detection reads, and what it held before. */
export interface WaitInput {
  /** The spans and log events detection needs. */
  batch: DecodedBatch;
  /** Spans the input held. */
  spans: number;
  /** Wait events the input held: span events and log records of the wait-event vocabulary. */
  waitEvents: number;
}

/** An OTLP payload: which signal, how encoded, the bytes, and a name for error messages. */
export interface OtlpPayload {
  signal: 'traces' | 'logs';
  encoding: 'proto' | 'json';
  bytes: Uint8Array;
  /** Where it came from, e.g. `otlp_spans/3@1200` or `POST /v1/traces`. */
  name: string;
}

/**
 * An OTLP protobuf traces input cut up to its records (`cutOtlpTracesProtoKept`): what the Kafka thread sends
 * of one, for the event loop to make the records of (`keptRecords`). Its `spans` and `waitEvents` are
 * `WaitInput`'s.
 */
export interface KeptInput {
  kept: KeptSpans;
}

const EMPTY: DecodedBatch = { spans: [], logEvents: [] };

/**
 * Cuts inputs down to what detection reads. One per thread: it reuses one builder.
 * Throws the decoder's `bad-input` error for a payload it cannot use.
 */
export class WaitInputCutter {
  private readonly builder: WaitRecordBuilder;

  constructor(filter: WaitFilterOptions = {}) {
    this.builder = new WaitRecordBuilder(filter);
  }

  /** The input, decoded and cut. */
  cut(payload: OtlpPayload): WaitInput {
    if (payload.signal === 'traces' && payload.encoding === 'proto') {
      // The common input: decoded and cut in one go, the dropped spans never made into records.
      const cut = cutOtlpTracesProto(payload.bytes, payload.name, this.builder);
      return { batch: cut.spans.length === 0 ? EMPTY : { spans: cut.spans, logEvents: [] }, spans: cut.spansIn, waitEvents: cut.waitEvents };
    }
    // Of the span attributes, only those the cut keeps are read.
    return cutDecoded(this.builder, decodeOtlpPayload(payload.signal, payload.encoding, payload.bytes, payload.name, WAIT_SPAN_ATTRIBUTES));
  }

  /**
   * `cut`, but OTLP protobuf traces of which spans are kept only up to their records: the same cut, the same
   * errors, the builder's memory the same after it; `keptRecords` makes the records `cut` would have made.
   */
  cutKept(payload: OtlpPayload): WaitInput | KeptInput {
    if (payload.signal === 'traces' && payload.encoding === 'proto') {
      const kept = cutOtlpTracesProtoKept(payload.bytes, payload.name, this.builder);
      return kept.count === 0 ? { batch: EMPTY, spans: kept.spansIn, waitEvents: 0 } : { kept };
    }
    return this.cut(payload);
  }
}

/**
 * Decoded input cut by `builder` (`WaitRecordBuilder.add`, then `take`), as the engine's records. The way
 * every input but OTLP protobuf traces is cut, and the reference `cutOtlpTracesProto` is tested against.
 */
export function cutDecoded(builder: WaitRecordBuilder, decoded: DecodedBatch): WaitInput {
  const before = builder.counts.eventsKept;
  builder.add(decoded, 0);
  // Every span with a wait event is kept, so the kept events are all the input's wait events.
  const waitEvents = builder.counts.eventsKept - before;
  const records = builder.take();
  return { batch: records === undefined ? EMPTY : fromWaitRecords(records), spans: decoded.spans.length, waitEvents };
}

/**
 * Wait records made here, as the records the engine takes. Unlike `decodeWaitRecordBatch` (input from a
 * topic) it checks nothing: the builder made them. Resources and attribute objects are taken as they are.
 */
function fromWaitRecords(r: WaitRecordBatch): DecodedBatch {
  const resources = r.resources as Attributes[];
  const spans = r.spans.map((s) =>
    makeSpan(
      s.traceId,
      s.spanId,
      s.parentSpanId,
      s.name,
      s.kind as SpanKind,
      s.start,
      s.end,
      (s.attributes as Attributes | undefined) ?? NO_ATTRS,
      resources[s.resource]!,
      s.events === undefined ? [] : s.events.map((e) => makeEvent(e.name, e.time, (e.attributes as Attributes | undefined) ?? NO_ATTRS)),
    ),
  );
  const logEvents = r.logEvents.map((e) =>
    makeLogEvent(e.traceId, e.spanId, e.name, e.time, (e.attributes as Attributes | undefined) ?? NO_ATTRS, resources[e.resource]!),
  );
  return { spans, logEvents };
}
