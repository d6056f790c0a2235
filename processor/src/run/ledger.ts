/**
 * The alert ledger: what has been announced, so that nothing is announced twice, across restarts too.
 *
 * It is rebuilt at start from the alerts already published (the alert topic, whose latest message per
 * fingerprint is the finding's state, or, without Kafka, the JSON-lines alert file) and kept up to date as
 * alerts go out. A deadlock incident is its fingerprint and the time it formed (`formedAt`): the same tasks
 * deadlocking again later is a new incident with the same fingerprint. The rules:
 * - `opened` goes out unless that fingerprint is open already, or this very incident was already resolved
 *   (except when it was resolved only because its spans went stale: then it is back, and said so);
 * - `resolved` goes out unless this incident's resolution already did;
 * - `potential` goes out once per fingerprint.
 */
import { readFile } from 'node:fs/promises';
import type { Alert, AlertChangeKind, Finding } from '../../../schemas/index.js';
import { ALERT_CHANGES } from '../../../schemas/index.js';
import type { Logger } from '../io/index.js';

/** The `brokenBy` event of a deadlock resolved because its spans stopped being fresh: a loss of trust, not an end. */
const STALE = 'span.stale';

/** The last announced state of one deadlock fingerprint. */
export interface LedgerEntry {
  change: 'opened' | 'resolved';
  /** The finding as last announced. */
  finding: Finding;
}

/** What has been announced, by fingerprint. */
export class AlertLedger {
  private readonly deadlocks = new Map<string, LedgerEntry>();
  private readonly potentials = new Set<string>();

  /** Takes one published alert into account (from history, or just sent). */
  record(alert: Pick<Alert, 'change' | 'finding'>): void {
    if (alert.change === 'potential') this.potentials.add(alert.finding.fingerprint);
    else this.deadlocks.set(alert.finding.fingerprint, { change: alert.change, finding: alert.finding });
  }

  /** Whether this change of this finding has not been announced yet. */
  isNew(change: AlertChangeKind, finding: Finding): boolean {
    if (change === 'potential') return !this.potentials.has(finding.fingerprint);
    const last = this.deadlocks.get(finding.fingerprint);
    if (!last) return true;
    const sameIncident = last.finding.formedAt === finding.formedAt;
    if (change === 'opened') return last.change === 'resolved' && (!sameIncident || last.finding.brokenBy?.event === STALE);
    return !(last.change === 'resolved' && sameIncident);
  }

  /** The deadlocks announced open and not resolved, as last announced. */
  open(): Finding[] {
    return [...this.deadlocks.values()].filter((e) => e.change === 'opened').map((e) => e.finding);
  }

  /** How many fingerprints it knows. */
  get size(): number {
    return this.deadlocks.size + this.potentials.size;
  }
}

/** Whether a parsed value looks like an alert: enough of one for the ledger. */
export function isAlertLike(v: unknown): v is Alert {
  const a = v as Alert | null;
  return (
    typeof a === 'object' &&
    a !== null &&
    (ALERT_CHANGES as readonly string[]).includes(a.change) &&
    typeof a.finding === 'object' &&
    a.finding !== null &&
    typeof a.finding.fingerprint === 'string'
  );
}

/**
 * The alerts in a JSON-lines alert file, oldest first; none if the file does not exist. A line that is not
 * an alert (the torn last line of a process killed mid-write, or an edit by hand) is skipped with a warning.
 */
export async function readAlertFile(path: string, logger: Logger): Promise<Alert[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: Alert[] = [];
  let bad = 0;
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    try {
      const v: unknown = JSON.parse(line);
      if (isAlertLike(v)) return void out.push(v);
    } catch {}
    if (bad++ === 0) logger.warn('alert file: skipped a line that is not an alert', { file: path, line: i + 1, sample: line.slice(0, 80) });
  });
  if (bad > 1) logger.warn('alert file: skipped lines that are not alerts', { file: path, count: bad });
  return out;
}
