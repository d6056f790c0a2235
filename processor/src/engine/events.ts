/**
 * Wait events as the store keeps them: a few fields each, with their attributes parsed once.
 *
 * Events that are alike but for their resource id share their other attributes: every acquire of one
 * kind of mutex says `lock.kind = mutex`, every checkout of a pool says its size. So an event keeps its id
 * (`lock.id`, `pool.name` or `cert.id`) and a reference to an interned EventKind: the name, the other
 * attributes (frozen, shared by all alike events) and what derivation reads from them, parsed once. The
 * input's attribute object of each event is not retained.
 *
 * Nothing is lost: an event's attributes are its kind's plus its id, so a log record can still be
 * compared attribute by attribute with the events already kept (to drop a duplicate).
 */
import { ATTR, EVENT } from '../../../schemas/index.js';
import type { AttrValue, Attributes } from '../model/span.js';
import { TIME_SPLIT, timeHi, timeLo, type SpanNode, type TaskNode, type WaitIvKind } from './model.js';

/** Which attribute carries an event's resource id, by the event name's prefix. */
function idKeyFor(name: string): string | undefined {
  if (name.startsWith('lock.')) return ATTR.LOCK_ID;
  if (name.startsWith('pool.') || name.startsWith('rpc.')) return ATTR.POOL_NAME;
  if (name.startsWith('cert.')) return ATTR.CERT_ID;
  return undefined;
}

const ID_KEYS = new Map(Object.values(EVENT).map((name) => [name as string, idKeyFor(name)]));

function idKeyOf(name: string): string | undefined {
  return ID_KEYS.has(name) ? ID_KEYS.get(name) : idKeyFor(name);
}

/** An attribute value as a string, the way ids are compared; undefined when absent or empty. */
export function str(v: AttrValue | undefined): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v === '' ? undefined : v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}

/** An attribute value as a whole number, or -1. */
export function int(v: AttrValue | undefined): number {
  if (typeof v === 'number') return Math.trunc(v);
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return Number(v);
  return -1;
}

function strings(v: AttrValue | undefined): string[] | undefined {
  if (Array.isArray(v)) {
    const out = v.map((x) => str(x as AttrValue)).filter((x): x is string => x !== undefined);
    return out.length ? out : undefined;
  }
  const s = str(v);
  return s === undefined ? undefined : [s];
}

const WAIT_KINDS: Readonly<Record<string, WaitIvKind>> = {
  [EVENT.LOCK_WAIT]: 'lock',
  [EVENT.POOL_WAIT]: 'pool',
  [EVENT.RPC_WAIT]: 'rpc',
  [EVENT.CERT_WAIT]: 'cert',
  [EVENT.TASK_WAIT]: 'task',
};

/** An event name with one set of attributes besides the id, and what derivation reads from them. */
export class EventKind {
  /** The kind of wait a wait event of this kind opens; undefined for other events. */
  readonly waitKind: WaitIvKind | undefined;
  /** The mode of that wait: the lock mode, the join mode, or what the wait's kind implies. */
  readonly waitMode: 'exclusive' | 'shared' | 'all' | 'any';
  /** The resource id, for events whose id is not a plain string (so not kept in the event itself). */
  readonly id: string | undefined;
  /** `lock.mode`, `exclusive` by default. */
  readonly mode: 'exclusive' | 'shared';
  /** `lock.kind`. */
  readonly lockKind: string | undefined;
  /** `pool.size` where it is a positive whole number, else 0. */
  readonly size: number;
  /** `task.wait.on`. */
  readonly on: string[] | undefined;
  /** The event's own task: `task.id`, else `thread.id`; undefined where it is the span's. */
  readonly taskId: string | undefined;
  /** How many attributes `rest` has. */
  readonly restSize: number;

  constructor(
    readonly name: string,
    /** The attribute that carries the resource id, for the event families that have one. */
    readonly idKey: string | undefined,
    /** The attributes other than the id that the event itself keeps. */
    readonly rest: Readonly<Attributes>,
    /** Whether the event arrived as a log record. */
    readonly log: boolean,
  ) {
    this.restSize = Object.keys(rest).length;
    this.id = idKey === undefined ? undefined : str(rest[idKey]);
    this.mode = rest[ATTR.LOCK_MODE] === 'shared' ? 'shared' : 'exclusive';
    this.lockKind = str(rest[ATTR.LOCK_KIND]);
    const size = int(rest[ATTR.POOL_SIZE]);
    this.size = size > 0 ? size : 0;
    this.on = name === EVENT.TASK_WAIT ? strings(rest[ATTR.TASK_WAIT_ON]) : undefined;
    this.taskId = str(rest[ATTR.TASK_ID]) ?? str(rest[ATTR.THREAD_ID]);
    this.waitKind = WAIT_KINDS[name];
    switch (this.waitKind) {
      case 'lock':
        this.waitMode = this.mode;
        break;
      case 'rpc':
        this.waitMode = 'all';
        break;
      case 'cert':
        this.waitMode = 'any';
        break;
      case 'task':
        this.waitMode = rest[ATTR.TASK_WAIT_MODE] === 'any' ? 'any' : 'all';
        break;
      default:
        this.waitMode = 'exclusive';
    }
  }
}

/** One wait-vocabulary event of a span, resolved to its task. */
export class WaitEvent {
  /** The span's next event. */
  next: WaitEvent | undefined = undefined;
  // The time in two parts (see TIME_SPLIT).
  private readonly hi: number | undefined = undefined;
  private readonly lo: number | undefined = undefined;

  constructor(
    readonly kind: EventKind,
    time: number,
    /** The resource id where the event carries it as a non-empty string (the usual case), else undefined. */
    readonly res: string | undefined,
    readonly span: SpanNode,
  ) {
    const hi = timeHi(time);
    this.hi = hi;
    this.lo = timeLo(time, hi);
  }

  /** When it happened (unix ns). */
  get time(): number {
    return this.hi! * TIME_SPLIT + this.lo!;
  }

  /** The event's task: its span's, unless it names another (see `OtherTaskEvent`). */
  get task(): TaskNode {
    return this.span.task;
  }

  get name(): string {
    return this.kind.name;
  }

  /** The resource id: lock.id, pool.name or cert.id (for rpc events, the callee's intake pool). */
  get id(): string | undefined {
    return this.res ?? this.kind.id;
  }

  /** Whether the event's attributes are exactly `b`, value for value (as JSON). */
  sameAttributes(b: Attributes): boolean {
    const k = this.kind;
    const n = k.restSize + (this.res === undefined ? 0 : 1);
    if (n !== Object.keys(b).length) return false;
    if (this.res !== undefined && b[k.idKey!] !== this.res) return false;
    for (const key of Object.keys(k.rest)) if (JSON.stringify(k.rest[key]) !== JSON.stringify(b[key])) return false;
    return true;
  }
}

/**
 * An event of a task other than its span's (the event's own `task.id`): the few events that need a
 * field for their task, which the others read from their span.
 */
export class OtherTaskEvent extends WaitEvent {
  constructor(kind: EventKind, time: number, res: string | undefined, span: SpanNode, private readonly own: TaskNode) {
    super(kind, time, res, span);
  }

  override get task(): TaskNode {
    return this.own;
  }
}

/** A value's key for interning: self-delimiting, and distinct for values that parse differently. */
function valueKey(v: unknown): string {
  if (typeof v === 'string') return 's' + v.length + ':' + v;
  if (typeof v === 'number') return 'n' + String(v) + ';';
  if (typeof v === 'boolean') return v ? 't' : 'f';
  if (v === null) return 'z';
  if (Array.isArray(v)) {
    let s = 'a' + v.length + '[';
    for (const x of v) s += valueKey(x);
    return s;
  }
  // Not an attribute value a decoder makes; keyed by what is compared of it.
  const json = JSON.stringify(v) ?? '';
  return 'j' + json.length + ':' + json;
}

/**
 * The interned event kinds of a store. The table is bounded: past `limit` kinds (events with ever new
 * attributes), new kinds are made per event and not kept in the table.
 *
 * The table is a trie: from the event's name (one root for span events, one for log records), one step per
 * attribute other than a kept id, in the attributes' order, by key and then by value. Finding an event's
 * kind makes nothing: no key string is built for it (built per event, such keys were a fifth of all the
 * event loop allocated on the Kafka benchmark's workload).
 */
export class EventKinds {
  private readonly roots = new Map<string, KindNode>();
  private readonly logRoots = new Map<string, KindNode>();
  private count = 0;

  constructor(private readonly limit = 20_000) {}

  /** Kinds in the table. */
  get size(): number {
    return this.count;
  }

  /** The resource id an event keeps itself: its id attribute, when a non-empty string. */
  static idOf(name: string, attrs: Attributes): string | undefined {
    const key = idKeyOf(name);
    if (key === undefined) return undefined;
    const v = attrs[key];
    return typeof v === 'string' && v !== '' ? v : undefined;
  }

  /** The kind of an event with these attributes, of which the id is kept by the event where `idKept`. */
  of(name: string, attrs: Attributes, idKept: boolean, log: boolean): EventKind {
    const idKey = idKeyOf(name);
    const room = this.count < this.limit;
    const roots = log ? this.logRoots : this.roots;
    let node = roots.get(name);
    if (node === undefined && room) roots.set(name, (node = new KindNode()));
    let alone = true;
    for (const k in attrs) {
      if (!Object.hasOwn(attrs, k) || (idKept && k === idKey)) continue;
      alone = false;
      if (node !== undefined) node = node.step(k, attrs[k], room);
    }
    if (node?.kind !== undefined) return node.kind;
    const rest = alone
      ? EMPTY_ATTRS
      : Object.freeze(Object.fromEntries(Object.keys(attrs).filter((k) => !(idKept && k === idKey)).map((k) => [k, attrs[k]])));
    const kind = new EventKind(name, idKey, rest, log);
    if (node !== undefined && room) {
      node.kind = kind;
      this.count++;
    }
    return kind;
  }
}

/**
 * A node of the kinds' trie: the kind whose attributes end here, and the next attribute's nodes by its key,
 * then by its value: a string, number, boolean or null as itself (a Map tells 1 from '1', and takes -0 for 0
 * and NaN for NaN, as `valueKey` does), any other value by its `valueKey`, in a map of its own.
 */
class KindNode {
  kind: EventKind | undefined = undefined;
  private plain: Map<string, Map<unknown, KindNode>> | undefined = undefined;
  private other: Map<string, Map<unknown, KindNode>> | undefined = undefined;

  /** The node after the attribute `key`: `value`, made where `make`, else undefined where there is none. */
  step(key: string, value: AttrValue, make: boolean): KindNode | undefined {
    const plain = value === null || typeof value !== 'object';
    const v: unknown = plain ? value : valueKey(value);
    let byKey = plain ? this.plain : this.other;
    let byValue = byKey?.get(key);
    let next = byValue?.get(v);
    if (next === undefined && make) {
      if (byKey === undefined) {
        byKey = new Map();
        if (plain) this.plain = byKey;
        else this.other = byKey;
      }
      if (byValue === undefined) byKey.set(key, (byValue = new Map()));
      byValue.set(v, (next = new KindNode()));
    }
    return next;
  }
}

const EMPTY_ATTRS: Readonly<Attributes> = Object.freeze({});
