/**
 * The order of input during warm-up, and when warm-up is over.
 *
 * At start the processor re-reads a window of the spans topic to rebuild the live graph. Partitions are
 * read side by side but not in step: one may be at its end while another is still minutes behind. The
 * engine's staleness rule assumes it is told of snapshots roughly in the order they were observed, so
 * replayed input is held here per partition and handed on in timestamp order, only up to the watermark:
 * the oldest "latest timestamp" among partitions still catching up (a partition that caught up, and the
 * OTLP/HTTP input, hold nothing back). The replay is over when every assigned partition has reached the end
 * offset it had at start; a partition that makes no progress for `stallMs` is taken as caught up (a
 * transaction marker at the end of a partition is never delivered, for one), with a warning.
 */
import type { AssignedPartition } from '../io/index.js';
import type { DecodedBatch } from '../model/span.js';

/** A decoded input and when it was observed (the Kafka record timestamp, or the HTTP receipt time). */
export interface TimedBatch {
  batch: DecodedBatch;
  observedAtMs: number;
  /**
   * What the input held before it was cut to what detection reads (see wait-input.ts), for the counts of
   * spans and wait events taken in. Default: what `batch` holds.
   */
  held?: { spans: number; waitEvents: number };
}

interface Lane {
  items: TimedBatch[];
  head: number;
  /** Offset after which the lane caught up; undefined for lanes that never hold back (HTTP). */
  end: bigint | undefined;
  caughtUp: boolean;
  latestMs: number;
  lastProgressAt: number;
}

/** The lane of OTLP/HTTP input. */
export const HTTP_LANE = 'http';

/** Holds replayed input and hands it on in timestamp order; tells when the replay has caught up. */
export class ReplayOrder {
  private readonly lanes = new Map<string, Lane>();
  private joined: boolean;

  /**
   * @param stallMs a lane without progress for this long counts as caught up.
   * @param kafka whether partitions are to come: until the group is joined, nothing is handed on.
   */
  constructor(
    private readonly stallMs: number,
    kafka: boolean,
  ) {
    this.joined = !kafka;
  }

  /** Adds partitions the group assigned (maybe none: the join itself is news). */
  assign(partitions: readonly AssignedPartition[], nowMs: number): void {
    this.joined = true;
    for (const p of partitions) {
      const end = BigInt(p.endOffsetAtStart);
      const start = p.startOffset === undefined ? end : BigInt(p.startOffset);
      const name = `${p.topic}/${p.partition}`;
      // Input that came before the join stays held.
      const held = this.lanes.get(name);
      this.lanes.set(name, { items: held?.items ?? [], head: held?.head ?? 0, end, caughtUp: start >= end, latestMs: held?.latestMs ?? -Infinity, lastProgressAt: nowMs });
    }
  }

  /** Holds input of a lane (`topic/partition`, or `HTTP_LANE`); `lastOffset` is the batch's last Kafka offset. */
  push(lane: string, items: readonly TimedBatch[], lastOffset: string | undefined, nowMs: number): void {
    let l = this.lanes.get(lane);
    if (!l) {
      // HTTP, or a partition that came without a join we saw: it holds nothing back.
      l = { items: [], head: 0, end: undefined, caughtUp: true, latestMs: -Infinity, lastProgressAt: nowMs };
      this.lanes.set(lane, l);
    }
    for (const it of items) {
      l.items.push(it);
      if (it.observedAtMs > l.latestMs) l.latestMs = it.observedAtMs;
    }
    l.lastProgressAt = nowMs;
    if (!l.caughtUp && l.end !== undefined && lastOffset !== undefined && BigInt(lastOffset) + 1n >= l.end) l.caughtUp = true;
  }

  /** Lanes that made no progress for `stallMs` count as caught up; returns their names. */
  markStalled(nowMs: number): string[] {
    const out: string[] = [];
    for (const [name, l] of this.lanes) {
      if (!l.caughtUp && nowMs - l.lastProgressAt >= this.stallMs) {
        l.caughtUp = true;
        out.push(name);
      }
    }
    return out;
  }

  /** Whether the group was joined and every assigned partition has caught up. */
  get caughtUp(): boolean {
    if (!this.joined) return false;
    for (const l of this.lanes.values()) if (!l.caughtUp) return false;
    return true;
  }

  /** Partitions still catching up. */
  behind(): string[] {
    return [...this.lanes].filter(([, l]) => !l.caughtUp).map(([n]) => n);
  }

  /** Hands on the held input that is safe to apply now, oldest first: all of it once caught up. */
  drain(): TimedBatch[] {
    let watermark = this.joined ? Infinity : -Infinity;
    for (const l of this.lanes.values()) if (!l.caughtUp && l.latestMs < watermark) watermark = l.latestMs;
    const out: TimedBatch[] = [];
    const lanes = [...this.lanes.values()];
    for (;;) {
      let best: Lane | undefined;
      for (const l of lanes) {
        const it = l.items[l.head];
        if (it && it.observedAtMs <= watermark && (!best || it.observedAtMs < best.items[best.head]!.observedAtMs)) best = l;
      }
      if (!best) break;
      out.push(best.items[best.head++]!);
    }
    for (const l of lanes) {
      if (l.head > 1024 || l.head === l.items.length) {
        l.items.splice(0, l.head);
        l.head = 0;
      }
    }
    return out;
  }
}
