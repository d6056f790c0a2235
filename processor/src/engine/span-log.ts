/**
 * A span log: spans in the order they were logged, each with a time, oldest first. The detector keeps two:
 * open spans by when they were last observed (the staleness sweep, `Detector.expire`), and ended or stale
 * spans by when they ended (forgetting what is older than the history, `Detector.forget`). The first gets
 * an entry for every snapshot of every open span, so the log is a queue of fixed-size chunks: appending
 * never copies what is already there, the swept head is let go a chunk at a time, and the times sit
 * unboxed in typed arrays.
 */
import type { SpanNode } from './model.js';

const CHUNK = 4096;

interface Chunk {
  spans: (SpanNode | undefined)[];
  at: Float64Array;
}

/** A first-in, first-out log of (span, time) entries. */
export class SpanLog {
  private readonly chunks: Chunk[] = [];
  /** The oldest entry's place in the first chunk. */
  private head = 0;
  /** The next free place in the last chunk. */
  private tail = 0;

  /** Appends an entry. */
  push(span: SpanNode, at: number): void {
    let last = this.chunks[this.chunks.length - 1];
    if (last === undefined || this.tail === CHUNK) {
      last = { spans: new Array<SpanNode | undefined>(CHUNK), at: new Float64Array(CHUNK) };
      this.chunks.push(last);
      this.tail = 0;
    }
    last.spans[this.tail] = span;
    last.at[this.tail++] = at;
  }

  /** When the oldest entry was observed; undefined when the log is empty. */
  oldestAt(): number | undefined {
    return this.chunks.length === 0 ? undefined : this.chunks[0].at[this.head];
  }

  /** Removes the oldest entry (the log must not be empty) and returns its span. */
  shift(): SpanNode {
    const first = this.chunks[0];
    const span = first.spans[this.head]!;
    first.spans[this.head++] = undefined;
    if (this.head === (this.chunks.length === 1 ? this.tail : CHUNK)) {
      this.chunks.shift();
      this.head = 0;
    }
    return span;
  }
}
