/**
 * The span table: the kept version of every span, grouped by trace, with each span's children.
 *
 * Why by trace. Spans come in traces: an exporter's batch holds the spans of a trace side by side, a span's
 * parent is in its own trace, and so is every span a task.wait.on names. A table keyed by span id alone
 * costs every span a lookup and an insert in a map of all spans, plus a children list in a second map of
 * all spans: at a million spans each of those is a cache miss, and together they cost more than decoding
 * the span did. Grouped by trace, the next span is most often of the trace just used (no lookup at all),
 * and is found among the few spans of its trace; children are found by a scan of the trace, or through an
 * index made the first time a large trace is asked. Span ids may repeat across traces; within a trace
 * they are unique.
 */
import { OPEN, SpanNode } from './model.js';

const EMPTY: readonly never[] = Object.freeze([]);

/**
 * Up to this many spans, a trace is searched by a scan; past it, through a map by span id. A map costs each
 * span an entry (about 40 bytes, kept, and copied by the young-generation collector), and most traces are
 * smaller than this: at 12, the analyze benchmark's traces of 5-40 spans were about 3% slower.
 */
const SCAN = 48;

/** The spans of one trace. */
class TraceSpans {
  /** Its spans, in the order they first arrived (a new version takes its old version's place). */
  readonly spans: SpanNode[] = [];
  /** The spans by id, once there are more than SCAN. */
  private byId: Map<string, SpanNode> | undefined = undefined;
  /** Children by parent span id, made when asked and dropped when a span comes or goes. */
  private kids: Map<string, SpanNode[]> | undefined = undefined;

  constructor(readonly traceId: string) {}

  get(spanId: string): SpanNode | undefined {
    if (this.byId !== undefined) return this.byId.get(spanId);
    const spans = this.spans;
    for (let i = 0; i < spans.length; i++) if (spans[i].spanId === spanId) return spans[i];
    return undefined;
  }

  /** Keeps `span`, in place of the version kept for its id, if any. */
  set(span: SpanNode): void {
    const spans = this.spans;
    const old = this.get(span.spanId);
    if (old !== undefined) spans[spans.indexOf(old)] = span;
    else {
      spans.push(span);
      if (this.byId !== undefined) this.byId.set(span.spanId, span);
      else if (spans.length > SCAN) this.byId = new Map(spans.map((s) => [s.spanId, s]));
    }
    if (this.byId !== undefined && old !== undefined) this.byId.set(span.spanId, span);
    this.kids = undefined;
  }

  /** Removes `span` if it is the version kept for its id; returns whether it was. */
  delete(span: SpanNode): boolean {
    const spans = this.spans;
    const i = spans.indexOf(span);
    if (i < 0) return false;
    spans.splice(i, 1);
    this.byId?.delete(span.spanId);
    this.kids = undefined;
    return true;
  }

  /** Whether a span whose parent is `spanId` is open. */
  hasOpenChild(spanId: string): boolean {
    const spans = this.spans;
    for (let i = 0; i < spans.length; i++) if (spans[i].parentSpanId === spanId && spans[i].end === OPEN) return true;
    return false;
  }

  /** The spans whose parent is `spanId`. */
  childrenOf(spanId: string): readonly SpanNode[] {
    const spans = this.spans;
    if (spans.length <= SCAN) {
      let out: SpanNode[] | undefined;
      for (const s of spans) if (s.parentSpanId === spanId) (out ??= []).push(s);
      return out ?? EMPTY;
    }
    if (this.kids === undefined) {
      const kids = new Map<string, SpanNode[]>();
      for (const s of spans) {
        if (s.parentSpanId === undefined) continue;
        const list = kids.get(s.parentSpanId);
        if (list === undefined) kids.set(s.parentSpanId, [s]);
        else list.push(s);
      }
      this.kids = kids;
    }
    return this.kids.get(spanId) ?? EMPTY;
  }
}

/**
 * The kept version of every span, by trace id and span id. A trace of one span (an open task's lone span,
 * most often) is kept as that span: a group for it would cost more than the span.
 */
export class SpanTable {
  private readonly traces = new Map<string, SpanNode | TraceSpans>();
  /** The trace used last, and what the map holds for it: the next span is most often of the same trace. */
  private lastId: string | undefined = undefined;
  private last: SpanNode | TraceSpans | undefined = undefined;
  private count = 0;

  private trace(traceId: string): SpanNode | TraceSpans | undefined {
    if (traceId === this.lastId) return this.last;
    const t = this.traces.get(traceId);
    if (t !== undefined) {
      this.lastId = traceId;
      this.last = t;
    }
    return t;
  }

  private put(traceId: string, t: SpanNode | TraceSpans): void {
    this.traces.set(traceId, t);
    this.lastId = traceId;
    this.last = t;
  }

  get(traceId: string, spanId: string): SpanNode | undefined {
    const t = this.trace(traceId);
    if (t === undefined) return undefined;
    if (t instanceof TraceSpans) return t.get(spanId);
    return t.spanId === spanId ? t : undefined;
  }

  /** Keeps `span`, in place of the version kept for its ids, if any. */
  set(span: SpanNode): void {
    const t = this.trace(span.traceId);
    if (t === undefined) {
      this.put(span.traceId, span);
      this.count++;
    } else if (t instanceof TraceSpans) {
      const before = t.spans.length;
      t.set(span);
      this.count += t.spans.length - before;
    } else if (t.spanId === span.spanId) {
      this.put(span.traceId, span);
    } else {
      const group = new TraceSpans(span.traceId);
      group.set(t);
      group.set(span);
      this.put(span.traceId, group);
      this.count++;
    }
  }

  /** Removes `span`, if it is the version kept for its ids. */
  delete(span: SpanNode): void {
    const t = this.trace(span.traceId);
    if (t === undefined) return;
    if (t instanceof TraceSpans) {
      if (!t.delete(span)) return;
      if (t.spans.length === 1) this.put(span.traceId, t.spans[0]);
    } else if (t === span) {
      this.traces.delete(span.traceId);
      this.lastId = this.last = undefined;
    } else return;
    this.count--;
  }

  /**
   * The children of a span: the spans of its trace whose parent it is. A trace kept as one span holds a
   * child of `span` when that span is not kept itself (gone, and asked of by a caller that still holds it).
   */
  childrenOf(span: SpanNode): readonly SpanNode[] {
    const t = this.trace(span.traceId);
    if (t === undefined) return EMPTY;
    if (t instanceof TraceSpans) return t.childrenOf(span.spanId);
    return t.parentSpanId === span.spanId ? [t] : EMPTY;
  }

  /** Whether one of the children of `span` is open. */
  hasOpenChild(span: SpanNode): boolean {
    const t = this.trace(span.traceId);
    if (t === undefined) return false;
    if (t instanceof TraceSpans) return t.hasOpenChild(span.spanId);
    return t.parentSpanId === span.spanId && t.end === OPEN;
  }

  get size(): number {
    return this.count;
  }

  /** Every span. */
  *values(): Iterable<SpanNode> {
    for (const t of this.traces.values()) {
      if (t instanceof TraceSpans) yield* t.spans;
      else yield t;
    }
  }
}
