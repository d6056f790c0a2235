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
import { eachRequirement, requirements, waitersOf, type Req, type ReqSink } from './requirements.js';
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

/**
 * A requirement graph in flat arrays: node `i` has requirements `reqFirst[i] .. reqFirst[i + 1]`, and
 * requirement `r` has targets `tgts[tgtFirst[r] .. tgtFirst[r + 1]]` (node indices). A closure can hold
 * every open task (a replay after a restart seeds them all), so it keeps no object per requirement.
 */
class ReqGraph implements ReqSink {
  readonly nodes: TaskNode[] = [];
  private readonly index = new Map<TaskNode, number>();
  private readonly reqFirst: number[] = [];
  private readonly reqAll: boolean[] = [];
  private readonly tgtFirst: number[] = [];
  private readonly tgts: number[] = [];

  /** The node of a task, added (last) when new. */
  node(t: TaskNode): number {
    let i = this.index.get(t);
    if (i === undefined) {
      i = this.nodes.length;
      this.nodes.push(t);
      this.index.set(t, i);
    }
    return i;
  }

  has(t: TaskNode): boolean {
    return this.index.has(t);
  }

  /** Starts the requirements of the next node (nodes are given their requirements in order). */
  beginNode(): void {
    this.reqFirst.push(this.reqAll.length);
  }

  /** Adds a requirement of the current node; its targets become nodes. */
  req(all: boolean, targets: readonly TaskNode[]): void {
    this.reqAll.push(all);
    this.tgtFirst.push(this.tgts.length);
    for (const x of targets) this.tgts.push(this.node(x));
  }

  /**
   * The least fixpoint of "can go on" over the nodes given their requirements: a node goes on when each
   * `all` requirement has every target going on and each `any` requirement has one. Returns the nodes
   * that never do, in node order.
   */
  stuck(): TaskNode[] {
    const n = this.reqFirst.length;
    const m = this.reqAll.length;
    const { reqFirst, reqAll, tgtFirst, tgts } = this;
    reqFirst.push(m);
    tgtFirst.push(tgts.length);
    const unsat = new Int32Array(n);
    const pending = new Int32Array(m);
    const owner = new Int32Array(m);
    // Requirements by target, in node order: `byTarget[revFirst[x] .. revFirst[x + 1]]`.
    const revFirst = new Int32Array(this.nodes.length + 1);
    for (const x of tgts) revFirst[x + 1]++;
    for (let x = 0; x < this.nodes.length; x++) revFirst[x + 1] += revFirst[x];
    const fill = revFirst.slice(0, this.nodes.length);
    const byTarget = new Int32Array(tgts.length);
    const free = new Int32Array(n);
    let tail = 0;
    for (let i = 0; i < n; i++) {
      unsat[i] = reqFirst[i + 1] - reqFirst[i];
      if (unsat[i] === 0) free[tail++] = i;
      for (let r = reqFirst[i]; r < reqFirst[i + 1]; r++) {
        owner[r] = i;
        pending[r] = reqAll[r] ? tgtFirst[r + 1] - tgtFirst[r] : 1;
        for (let k = tgtFirst[r]; k < tgtFirst[r + 1]; k++) byTarget[fill[tgts[k]]++] = r;
      }
    }
    for (let head = 0; head < tail; head++) {
      const f = free[head];
      for (let k = revFirst[f]; k < revFirst[f + 1]; k++) {
        const r = byTarget[k];
        const p = pending[r];
        if (p === 0) continue;
        if (reqAll[r] && p > 1) {
          pending[r] = p - 1;
          continue;
        }
        pending[r] = 0;
        if (--unsat[owner[r]] === 0) free[tail++] = owner[r];
      }
    }
    const out: TaskNode[] = [];
    for (let i = 0; i < n; i++) if (unsat[i] > 0) out.push(this.nodes[i]);
    return out;
  }
}

/** Finds the deadlocks that the seeds can reach, in the view at `t`. */
export function detect(g: GraphStore, seeds: Iterable<TaskNode>, t: number): Detection {
  // 1 and 2. The closure, each task's requirements computed once and kept only as flat arrays.
  const graph = new ReqGraph();
  for (const s of seeds) graph.node(s);
  for (let i = 0; i < graph.nodes.length; i++) {
    graph.beginNode();
    eachRequirement(g, graph.nodes[i], t, graph);
  }
  const stuck = new Set(graph.stuck());
  if (stuck.size === 0) return { cores: [], deadlocked: stuck, visited: graph.nodes.length };

  // 3. Strongly connected parts of the stuck set, through unsatisfiable requirements (computed again, in
  // full, for the stuck tasks alone).
  const deadReqs = new Map<TaskNode, Req[]>();
  for (const n of stuck) {
    const live: Req[] = [];
    for (const r of requirements(g, n, t)) {
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
    const core = new Set(stuckInside(scc, deadReqs));
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
  return { cores, deadlocked: stuck, visited: graph.nodes.length };
}

/**
 * The tasks of a component that can never go on when every target outside it is taken to go on (what a
 * component does to itself): an `all` requirement keeps its targets inside, and an `any` requirement
 * with a target outside is met.
 */
function stuckInside(nodes: TaskNode[], reqs: Map<TaskNode, Req[]>): TaskNode[] {
  const inside = new Set(nodes);
  const graph = new ReqGraph();
  for (const n of nodes) graph.node(n);
  for (const n of nodes) {
    graph.beginNode();
    for (const r of reqs.get(n)!) {
      const targets = r.targets.filter((x) => inside.has(x));
      if (r.all ? targets.length === 0 : targets.length < r.targets.length) continue;
      graph.req(r.all, targets);
    }
  }
  return graph.stuck();
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
