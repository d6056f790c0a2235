/**
 * Bookkeeping for a lock or pool of someone else's library, whose queue waitgraph does not own: the
 * events to record, the waits in progress and the holds, each tied to the span (and task) that was
 * active when it began, so that the release lands on the holder's span wherever it is called from.
 *
 * Trackers live in a WeakMap keyed by the library's object, so waitgraph adds no property to it and
 * forgets it with it. Every method records at most once per wait or hold, whatever order the library's
 * callbacks come in: a wait that was abandoned (timed out) records neither its acquire nor the release
 * of a hold it got too late, which the library gives back at once.
 */
import type { Span } from '@opentelemetry/api';
import type { EventSet } from '../core/event-sets.js';
import { record, recordingSpan, withTask } from '../core/recorder.js';

/** A wait in progress. */
export interface Wait {
  readonly span: Span;
  readonly task: string | undefined;
  /** Ended by a timeout: later grants and releases of it are not recorded. */
  abandoned: boolean;
}

/** A hold of one unit (or the lock). */
export interface Hold {
  readonly span: Span;
  readonly task: string | undefined;
  /** Released already: a second release records nothing. */
  done: boolean;
}

/** What waitgraph knows of one lock or pool of a library. */
export class Tracker {
  /** Open holds, oldest first. */
  readonly holds = new Set<Hold>();
  /** For a Mutex: its inner semaphore has been noted (see async-mutex.ts). */
  innerNoted = false;

  constructor(readonly events: EventSet) {}

  /** Records the start of a wait. */
  waited(span: Span, task: string | undefined): Wait {
    record(span, this.events.wait, withTask(this.events.attributes, span, task));
    return { span, task, abandoned: false };
  }

  /** Records a grant, unless its wait was abandoned; returns the hold, if recorded. */
  acquired(span: Span, task: string | undefined, wait?: Wait): Hold | undefined {
    if (wait?.abandoned) return undefined;
    record(span, this.events.acquire, withTask(this.events.attributes, span, task));
    const hold: Hold = { span, task, done: false };
    this.holds.add(hold);
    return hold;
  }

  /** Records the end of a hold, once. */
  released(hold: Hold | undefined): void {
    if (hold === undefined || hold.done) return;
    hold.done = true;
    this.holds.delete(hold);
    record(hold.span, this.events.release, withTask(this.events.releaseAttributes, hold.span, hold.task));
  }

  /** Records the abandonment of a wait, once. */
  timedOut(wait: Wait | undefined): void {
    if (wait === undefined || wait.abandoned) return;
    wait.abandoned = true;
    record(wait.span, this.events.timeout, withTask(this.events.attributes, wait.span, wait.task));
  }

  /** The hold a release that names none ends: the only one, else the active span's, else the oldest. */
  someHold(): Hold | undefined {
    if (this.holds.size <= 1) return this.holds.values().next().value;
    const active = recordingSpan();
    let oldest: Hold | undefined;
    for (const hold of this.holds) {
      if (hold.span === active) return hold;
      oldest ??= hold;
    }
    return oldest;
  }
}

/** Trackers by library object. */
export class Trackers {
  readonly #byObject = new WeakMap<object, Tracker>();

  /** The tracker of `target`, made by `make` the first time. */
  of(target: object, make: () => EventSet): Tracker {
    let tracker = this.#byObject.get(target);
    if (tracker === undefined) {
      tracker = new Tracker(make());
      this.#byObject.set(target, tracker);
    }
    return tracker;
  }

  /** The tracker of `target`, if it has one. */
  find(target: object): Tracker | undefined {
    return this.#byObject.get(target);
  }

  /** Gives `target` a tracker with these events (explicit wrapping, which names the lock or pool). */
  set(target: object, events: EventSet): Tracker {
    const tracker = new Tracker(events);
    this.#byObject.set(target, tracker);
    return tracker;
  }

  /** Makes `alias` share the tracker of `target` (a wrapper of the same lock). */
  alias(alias: object, target: object): void {
    const tracker = this.#byObject.get(target);
    if (tracker !== undefined) this.#byObject.set(alias, tracker);
  }
}

/**
 * Re-entrancy guard: while a wrapper calls the original method, wrappers of nested calls pass straight
 * through, so a lock wrapped twice (an instance wrapper over a patched prototype, a Mutex over its inner
 * Semaphore) records once. Library acquires call their inner acquire synchronously, which is what makes
 * a plain counter enough.
 */
export const nesting = { depth: 0 };

/** Calls `original` on `self` with `args`, with nested wrappers passing through. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the caller's own return type passes through
export function callUnnested(original: (...args: never[]) => unknown, self: unknown, args: ArrayLike<unknown>): any {
  nesting.depth++;
  try {
    return original.apply(self, args as never[]);
  } finally {
    nesting.depth--;
  }
}
