/**
 * Deadlock detection on the AND-OR wait-for graph, from a set of seed tasks.
 *
 * 1. Closure: every task reachable from the seeds through requirements. A task's fate depends only on
 *    what it can reach, so the closure decides the seeds exactly, at a cost in proportion to it.
 * 2. Progress: the least fixpoint of "can go on": a task can go on when each of its `all` requirements
 *    has every target able to go on, and each `any` requirement has one. What is left can never go on:
 *    the deadlocked set (the same answer as letting every free task finish and release, in any order).
 * 3. Cores: strongly connected parts of the deadlocked set that stay stuck even if everything outside them
 *    went on (cycles and knots). Every other deadlocked task is a victim, blocked behind a core.
 */
import { byTaskKey, type TaskNode } from './model.js';
import { requirements, waitersOf, type Req } from './requirements.js';
import type { GraphStore } from './store.js';

/** One deadlock core and what the detector learnt about it. */
export interface Core {
  /** The core's tasks, sorted by key. */
  tasks: TaskNode[];
  /** The unsatisfiable requirements of each core task (targets restricted to the deadlocked set). */
  reqs: Map<TaskNode, Req[]>;
}

/** The result of one detection. */
export interface Detection {
  cores: Core[];
  /** Every deadlocked task in the closure of the seeds. */
  deadlocked: Set<TaskNode>;
  /** How many tasks the closure held: the work done. */
  visited: number;
}

/** Finds the deadlocks that the seeds can reach, in the view at `t`. */
export function detect(g: GraphStore, seeds: Iterable<TaskNode>, t: number): Detection {
  // 1. Closure, with each task's requirements computed once.
  const reqs = new Map<TaskNode, Req[]>();
  const order: TaskNode[] = [];
  for (const s of seeds) {
    if (reqs.has(s)) continue;
    const r = requirements(g, s, t);
    reqs.set(s, r);
    order.push(s);
  }
  for (let i = 0; i < order.length; i++) {
    for (const r of reqs.get(order[i])!) {
      for (const x of r.targets) {
        if (reqs.has(x)) continue;
        reqs.set(x, requirements(g, x, t));
        order.push(x);
      }
    }
  }
  const stuck = stuckSet(order, reqs, undefined);
  if (stuck.size === 0) return { cores: [], deadlocked: stuck, visited: order.length };

  // 3. Strongly connected parts of the stuck set, through unsatisfiable requirements.
  const deadReqs = new Map<TaskNode, Req[]>();
  for (const n of stuck) {
    const live: Req[] = [];
    for (const r of reqs.get(n)!) {
      const inStuck = r.targets.map((x) => stuck.has(x));
      // An `all` requirement is unsatisfiable through its stuck targets; an `any` one only when every
      // target is stuck.
      if (r.all ? inStuck.some(Boolean) : inStuck.every(Boolean)) {
        const keep = r.targets.map((_, i) => i).filter((i) => inStuck[i]);
        live.push({ ...r, targets: keep.map((i) => r.targets[i]), since: keep.map((i) => r.since[i]) });
      }
    }
    deadReqs.set(n, live);
  }
  const cores: Core[] = [];
  for (const scc of stronglyConnected([...stuck], deadReqs)) {
    const cyclic = scc.length > 1 || deadReqs.get(scc[0])!.some((r) => r.targets.includes(scc[0]));
    if (!cyclic) continue;
    // The part of the component that stays stuck even if everything outside it went on.
    const inside = new Set(scc);
    const core = stuckSet(scc, deadReqs, inside);
    if (core.size === 0) continue;
    const tasks = [...core].sort(byTaskKey);
    const coreReqs = new Map<TaskNode, Req[]>();
    for (const n of tasks) {
      coreReqs.set(
        n,
        deadReqs.get(n)!.map((r) => {
          const keep = r.targets.map((_, i) => i).filter((i) => core.has(r.targets[i]));
          return { ...r, targets: keep.map((i) => r.targets[i]), since: keep.map((i) => r.since[i]) };
        }).filter((r) => r.targets.length > 0),
      );
    }
    cores.push({ tasks, reqs: coreReqs });
  }
  return { cores, deadlocked: stuck, visited: order.length };
}

/**
 * The tasks of `nodes` that can never go on. With `inside` given, targets outside it are taken to go on
 * (to find what a component does to itself).
 */
function stuckSet(nodes: TaskNode[], reqs: Map<TaskNode, Req[]>, inside: Set<TaskNode> | undefined): Set<TaskNode> {
  const unsat = new Map<TaskNode, number>();
  const pending = new Map<Req, number>();
  const rev = new Map<TaskNode, { n: TaskNode; r: Req }[]>();
  const free: TaskNode[] = [];
  for (const n of nodes) {
    let count = 0;
    for (const r of reqs.get(n)!) {
      const targets = inside ? r.targets.filter((x) => inside.has(x)) : r.targets;
      if (inside && (r.all ? targets.length === 0 : targets.length < r.targets.length)) continue;
      count++;
      pending.set(r, r.all ? targets.length : 1);
      for (const x of targets) {
        let l = rev.get(x);
        if (!l) rev.set(x, (l = []));
        l.push({ n, r });
      }
    }
    unsat.set(n, count);
    if (count === 0) free.push(n);
  }
  for (let i = 0; i < free.length; i++) {
    const l = rev.get(free[i]);
    if (!l) continue;
    for (const { n, r } of l) {
      const p = pending.get(r)!;
      if (p === 0) continue;
      pending.set(r, p - 1);
      if (p - 1 > 0 && r.all) continue;
      pending.set(r, 0);
      const u = unsat.get(n)! - 1;
      unsat.set(n, u);
      if (u === 0) free.push(n);
    }
  }
  const stuck = new Set<TaskNode>();
  for (const n of nodes) if (unsat.get(n)! > 0) stuck.add(n);
  return stuck;
}

/** Tarjan's algorithm, iterative, over the targets of the given requirements. */
function stronglyConnected(nodes: TaskNode[], reqs: Map<TaskNode, Req[]>): TaskNode[][] {
  const index = new Map<TaskNode, number>();
  const low = new Map<TaskNode, number>();
  const onStack = new Set<TaskNode>();
  const stack: TaskNode[] = [];
  const out: TaskNode[][] = [];
  let next = 0;
  const succ = (n: TaskNode): TaskNode[] => {
    const s: TaskNode[] = [];
    for (const r of reqs.get(n) ?? []) for (const x of r.targets) if (reqs.has(x)) s.push(x);
    return s;
  };
  for (const root of nodes) {
    if (index.has(root)) continue;
    const frames: { n: TaskNode; succ: TaskNode[]; i: number }[] = [{ n: root, succ: succ(root), i: 0 }];
    index.set(root, next);
    low.set(root, next++);
    stack.push(root);
    onStack.add(root);
    while (frames.length) {
      const f = frames[frames.length - 1];
      if (f.i < f.succ.length) {
        const w = f.succ[f.i++];
        if (!index.has(w)) {
          index.set(w, next);
          low.set(w, next++);
          stack.push(w);
          onStack.add(w);
          frames.push({ n: w, succ: succ(w), i: 0 });
        } else if (onStack.has(w)) {
          low.set(f.n, Math.min(low.get(f.n)!, index.get(w)!));
        }
        continue;
      }
      frames.pop();
      if (frames.length) {
        const p = frames[frames.length - 1].n;
        low.set(p, Math.min(low.get(p)!, low.get(f.n)!));
      }
      if (low.get(f.n) === index.get(f.n)) {
        const comp: TaskNode[] = [];
        let w: TaskNode;
        do {
          w = stack.pop()!;
          onStack.delete(w);
          comp.push(w);
        } while (w !== f.n);
        out.push(comp);
      }
    }
  }
  return out;
}

/**
 * The victims of a core: tasks outside it that can never go on, and wait on it directly or through
 * others. Every task upstream of the core is collected through the reverse edges (up to `limit`), then
 * one detection over them decides which are stuck; that is exact, where deciding each waiter as it is
 * met would miss one whose other options are found stuck only later.
 */
export function victimsOf(g: GraphStore, core: Core, t: number, limit = 100_000): TaskNode[] {
  const inCore = new Set<TaskNode>(core.tasks);
  const up = new Set<TaskNode>(core.tasks);
  const queue = [...core.tasks];
  for (let i = 0; i < queue.length && up.size < limit; i++) {
    for (const w of waitersOf(g, queue[i], t)) {
      if (up.has(w)) continue;
      up.add(w);
      queue.push(w);
    }
  }
  if (up.size === inCore.size) return [];
  const { deadlocked } = detect(g, up, t);
  const victims: TaskNode[] = [];
  for (const x of up) if (!inCore.has(x) && deadlocked.has(x)) victims.push(x);
  return victims.sort(byTaskKey);
}
