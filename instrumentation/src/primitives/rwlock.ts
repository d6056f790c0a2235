/**
 * An instrumented reader-writer lock for async code, with upgrade and downgrade.
 *
 * Shared holds coexist; an exclusive hold excludes every other. Waiters are served in FIFO order, and a
 * shared acquire queues behind a waiting exclusive one, so writers do not starve. A shared holder may
 * upgrade: it keeps its shared hold while it waits for the other readers to leave, and pending upgrades
 * go before every queued acquire. Two holders upgrading at once therefore wait for each other forever:
 * the classic upgrade deadlock, which the events show as two `lock.wait`s in exclusive mode by tasks that
 * each hold the lock shared. Abort one of them (AbortSignal) to break it.
 *
 * Events: `lock.acquire` with `lock.mode`, `lock.release`, `lock.wait` only when an acquire or upgrade
 * has to wait, and `lock.timeout` when one is abandoned. An upgrade or downgrade that takes effect is
 * recorded as a release followed at once by an acquire in the new mode, so every acquire has its release.
 */
import type { Attributes, Span } from '@opentelemetry/api';
import { Type, type Static } from '@sinclair/typebox';
import { ATTR, EVENT, type LockMode } from '../../../schemas/index.js';
import { WaitgraphError } from '../../../schemas/src/errors.js';
import { localId } from '../core/ids.js';
import { checkOptions } from '../core/options.js';
import { record, recordingSpan, withTask } from '../core/recorder.js';
import { currentTaskId } from '../core/task.js';
import type { AcquireOptions } from './permits.js';

/** Options of an RWLock. */
export const RWLockOptionsSchema = Type.Object(
  {
    /**
     * The `lock.id` the events carry. Give the same id in every service that takes the same shared lock.
     * Default: `<name>@<process tag>#<n>`, unique to this lock.
     */
    id: Type.Optional(Type.String({ minLength: 1 })),
    /** A readable name that starts the default id. Default: `rwlock`. */
    name: Type.Optional(Type.String({ minLength: 1 })),
  },
  { additionalProperties: false },
);
/** Options of an RWLock (the static type of the schema above). */
export type RWLockOptions = Static<typeof RWLockOptionsSchema>;

/** One hold of an RWLock. */
export interface RWLockHold {
  /** The mode held now. */
  readonly mode: LockMode;
  /** Ends the hold. Calling it again does nothing; a pending upgrade of this hold is abandoned. */
  release(): void;
  /**
   * Turns a shared hold into an exclusive one, waiting until this is the only holder. Resolves at once
   * for an exclusive hold. Rejects with `signal.reason` when aborted (the hold stays shared).
   */
  upgrade(options?: AcquireOptions): Promise<void>;
  /** Turns an exclusive hold into a shared one, letting waiting readers in. Does nothing when shared. */
  downgrade(): void;
}

interface Waiter {
  mode: LockMode;
  span: Span | undefined;
  task: string | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  /** For an upgrade: the hold being upgraded. */
  hold: Hold | undefined;
  resolve: (hold: Hold) => void;
  reject: (reason: unknown) => void;
}

/** An instrumented async reader-writer lock. */
export class RWLock {
  /** The `lock.id` of this lock. */
  readonly id: string;
  readonly #attrs: Readonly<Record<LockMode, Attributes>>;
  readonly #releaseAttrs: Attributes;
  readonly #ops: HoldOps;
  #readers = 0;
  #writer = false;
  readonly #queue: Waiter[] = [];
  readonly #upgrades: Waiter[] = [];

  constructor(options?: RWLockOptions) {
    const o = checkOptions(RWLockOptionsSchema, options, 'RWLock');
    this.id = o.id ?? localId('rwlock', o.name);
    const base = { [ATTR.LOCK_ID]: this.id, [ATTR.LOCK_KIND]: 'rwlock' };
    this.#attrs = Object.freeze({
      shared: Object.freeze({ ...base, [ATTR.LOCK_MODE]: 'shared' }),
      exclusive: Object.freeze({ ...base, [ATTR.LOCK_MODE]: 'exclusive' }),
    });
    this.#releaseAttrs = Object.freeze({ [ATTR.LOCK_ID]: this.id });
    this.#ops = {
      release: (hold) => this.#release(hold),
      upgrade: (hold, signal) => this.#upgrade(hold, signal),
      downgrade: (hold) => this.#downgrade(hold),
    };
  }

  /** Acquires a shared hold. */
  acquireShared(options?: AcquireOptions): Promise<RWLockHold> {
    return this.#acquire('shared', options?.signal);
  }

  /** Acquires an exclusive hold. */
  acquireExclusive(options?: AcquireOptions): Promise<RWLockHold> {
    return this.#acquire('exclusive', options?.signal);
  }

  /** Runs `fn` holding the lock shared, and releases it however `fn` ends. */
  runShared<T>(fn: (hold: RWLockHold) => T | PromiseLike<T>, options?: AcquireOptions): Promise<T> {
    return this.#run('shared', fn, options?.signal);
  }

  /** Runs `fn` holding the lock exclusively, and releases it however `fn` ends. */
  runExclusive<T>(fn: (hold: RWLockHold) => T | PromiseLike<T>, options?: AcquireOptions): Promise<T> {
    return this.#run('exclusive', fn, options?.signal);
  }

  /** Shared holds now. */
  get readers(): number {
    return this.#readers;
  }

  /** Whether an exclusive hold is held now. */
  get writeLocked(): boolean {
    return this.#writer;
  }

  async #run<T>(mode: LockMode, fn: (hold: RWLockHold) => T | PromiseLike<T>, signal: AbortSignal | undefined): Promise<T> {
    const hold = await this.#acquire(mode, signal);
    try {
      return await fn(hold);
    } finally {
      hold.release();
    }
  }

  #acquire(mode: LockMode, signal: AbortSignal | undefined): Promise<RWLockHold> {
    if (signal !== undefined && signal.aborted) return Promise.reject(signal.reason);
    const span = recordingSpan();
    const task = span === undefined ? undefined : currentTaskId();
    const free = mode === 'shared' ? !this.#writer : !this.#writer && this.#readers === 0;
    if (free && this.#queue.length === 0 && this.#upgrades.length === 0) {
      return Promise.resolve(this.#grant(mode, span, task));
    }
    return this.#enqueue(this.#queue, mode, span, task, signal, undefined);
  }

  #upgrade(hold: Hold, signal: AbortSignal | undefined): Promise<void> {
    if (signal !== undefined && signal.aborted) return Promise.reject(signal.reason);
    if (this.#readers === 1 && !this.#writer) {
      this.#convert(hold, 'exclusive');
      return Promise.resolve();
    }
    return this.#enqueue(this.#upgrades, 'exclusive', hold.span, hold.task, signal, hold).then(() => undefined);
  }

  #downgrade(hold: Hold): void {
    this.#convert(hold, 'shared');
    this.#dispatch();
  }

  #release(hold: Hold): void {
    const pending = this.#upgrades.find((w) => w.hold === hold);
    if (pending !== undefined) this.#abandon(pending, new WaitgraphError('bad-usage', 'RWLock: hold released while upgrading'));
    if (hold.span !== undefined) record(hold.span, EVENT.LOCK_RELEASE, withTask(this.#releaseAttrs, hold.span, hold.task));
    if (hold.mode === 'exclusive') this.#writer = false;
    else this.#readers--;
    this.#dispatch();
  }

  #grant(mode: LockMode, span: Span | undefined, task: string | undefined): Hold {
    if (mode === 'exclusive') this.#writer = true;
    else this.#readers++;
    if (span !== undefined) record(span, EVENT.LOCK_ACQUIRE, withTask(this.#attrs[mode], span, task));
    return new Hold(this.#ops, mode, span, task);
  }

  #convert(hold: Hold, mode: LockMode): void {
    const span = hold.span;
    if (span !== undefined) {
      record(span, EVENT.LOCK_RELEASE, withTask(this.#releaseAttrs, span, hold.task));
      record(span, EVENT.LOCK_ACQUIRE, withTask(this.#attrs[mode], span, hold.task));
    }
    if (mode === 'exclusive') {
      this.#readers--;
      this.#writer = true;
    } else {
      this.#writer = false;
      this.#readers++;
    }
    hold.mode = mode;
  }

  #enqueue(
    queue: Waiter[],
    mode: LockMode,
    span: Span | undefined,
    task: string | undefined,
    signal: AbortSignal | undefined,
    hold: Hold | undefined,
  ): Promise<Hold> {
    return new Promise<Hold>((resolve, reject) => {
      const waiter: Waiter = { mode, span, task, signal, onAbort: undefined, hold, resolve, reject };
      if (span !== undefined) record(span, EVENT.LOCK_WAIT, withTask(this.#attrs[mode], span, task));
      queue.push(waiter);
      if (signal !== undefined) {
        waiter.onAbort = () => this.#abandon(waiter, signal.reason);
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
    });
  }

  #abandon(waiter: Waiter, reason: unknown): void {
    const queue = waiter.hold === undefined ? this.#queue : this.#upgrades;
    const i = queue.indexOf(waiter);
    if (i < 0) return;
    queue.splice(i, 1);
    this.#settled(waiter);
    if (waiter.span !== undefined) record(waiter.span, EVENT.LOCK_TIMEOUT, withTask(this.#attrs[waiter.mode], waiter.span, waiter.task));
    waiter.reject(reason);
    // the abandoned waiter may have been what held the others back
    this.#dispatch();
  }

  #settled(waiter: Waiter): void {
    if (waiter.onAbort !== undefined) waiter.signal!.removeEventListener('abort', waiter.onAbort);
  }

  #dispatch(): void {
    if (this.#upgrades.length > 0) {
      // An upgrade can go once its hold is the only shared one; while any is pending, newcomers wait.
      if (this.#upgrades.length === 1 && this.#readers === 1 && !this.#writer) {
        const waiter = this.#upgrades.shift()!;
        this.#settled(waiter);
        this.#convert(waiter.hold!, 'exclusive');
        waiter.resolve(waiter.hold!);
      }
      return;
    }
    while (this.#queue.length > 0 && !this.#writer) {
      const head = this.#queue[0]!;
      if (head.mode === 'exclusive' && this.#readers > 0) return;
      this.#queue.shift();
      this.#settled(head);
      head.resolve(this.#grant(head.mode, head.span, head.task));
    }
  }
}

/** What a hold asks of its lock. */
interface HoldOps {
  release(hold: Hold): void;
  upgrade(hold: Hold, signal: AbortSignal | undefined): Promise<void>;
  downgrade(hold: Hold): void;
}

/** One hold of an RWLock. */
class Hold implements RWLockHold {
  #released = false;

  constructor(
    readonly ops: HoldOps,
    public mode: LockMode,
    readonly span: Span | undefined,
    readonly task: string | undefined,
  ) {}

  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.ops.release(this);
  }

  upgrade(options?: AcquireOptions): Promise<void> {
    if (this.#released) return Promise.reject(new WaitgraphError('bad-usage', 'RWLock: upgrade of a released hold'));
    if (this.mode === 'exclusive') return Promise.resolve();
    return this.ops.upgrade(this, options?.signal);
  }

  downgrade(): void {
    if (this.#released || this.mode === 'shared') return;
    this.ops.downgrade(this);
  }
}
