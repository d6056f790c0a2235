/**
 * A brute-force reference for the detector, on small final states: simulate. Repeatedly let any task
 * that can take its next step go on and finish (releasing everything it holds), until nothing can move.
 * The tasks left are exactly the deadlocked ones. This is a different algorithm from the engine's
 * fixpoint over requirements, so agreement means something.
 */

/** A hold in a final state. */
export interface RefHold {
  kind: 'lock' | 'pool';
  res: string;
  mode: 'exclusive' | 'shared';
}

/** The one open wait a task may have. */
export type RefWait =
  | { kind: 'lock'; res: string; mode: 'exclusive' | 'shared' }
  | { kind: 'pool'; res: string }
  | { kind: 'task'; on: string[]; mode: 'all' | 'any' };

/** A task in a final state. */
export interface RefTask {
  id: string;
  holds: RefHold[];
  wait?: RefWait;
}

/**
 * The ids of the tasks that can never finish. `sizes` gives each pool's capacity; a state must not hold
 * more units of a pool than it has (the engine's pool rule, any one holder, is exact only then).
 */
export function referenceDeadlocked(tasks: RefTask[], sizes: Record<string, number>): Set<string> {
  const live = new Map(tasks.map((t) => [t.id, t]));
  const finished = new Set<string>();
  const canGo = (t: RefTask): boolean => {
    const w = t.wait;
    if (!w) return true;
    if (w.kind === 'lock') {
      for (const o of live.values()) {
        for (const h of o.holds) {
          if (h.kind !== 'lock' || h.res !== w.res) continue;
          if (o === t) {
            if (h.mode === 'exclusive') return false; // non-reentrant: waits for itself
            continue; // an upgrade waits for the others only
          }
          if (h.mode === 'exclusive' || w.mode === 'exclusive') return false;
        }
      }
      return true;
    }
    if (w.kind === 'pool') {
      let units = 0;
      for (const o of live.values()) for (const h of o.holds) if (h.kind === 'pool' && h.res === w.res) units++;
      return units < sizes[w.res];
    }
    const known = w.on.filter((id) => live.has(id) || finished.has(id));
    const done = (id: string) => finished.has(id) || !live.has(id);
    return w.mode === 'all' ? known.every(done) : w.on.some(done);
  };
  let moved = true;
  while (moved) {
    moved = false;
    for (const t of [...live.values()]) {
      if (canGo(t)) {
        live.delete(t.id);
        finished.add(t.id);
        moved = true;
      }
    }
  }
  return new Set(live.keys());
}
