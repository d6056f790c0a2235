/**
 * Alerts: the message `waitgraph run` publishes for each change of a finding (schemas/alert.schema.json),
 * how one reads on a terminal, and the resolution of a deadlock that was announced open and is gone when
 * the processor looks again after a restart (there is then no engine finding to report, only the old one).
 */
import { ALERT_SCHEMA_VERSION, type Alert, type AlertChangeKind, type Finding } from '../../../schemas/index.js';
import { renderFinding, type Style } from '../cli/report.js';

/** Who publishes: goes into every alert. */
export interface AlertSource {
  /** The processor instance (`--instance-id`). */
  instance: string;
  /** The waitgraph version. */
  version: string;
}

/** Builds the alert for one change of a finding. */
export function toAlert(change: AlertChangeKind, finding: Finding, source: AlertSource, at: Date, detectionLatencyMs?: number): Alert {
  return {
    schemaVersion: ALERT_SCHEMA_VERSION,
    change,
    at: at.toISOString(),
    fingerprint: finding.fingerprint,
    finding,
    detector: { instance: source.instance, version: source.version },
    ...(detectionLatencyMs !== undefined ? { detectionLatencyMs: Math.round(detectionLatencyMs * 1000) / 1000 } : {}),
  };
}

/**
 * The resolved form of a deadlock that was announced open and that the detector no longer finds, with
 * nothing better to say what broke it: its spans were not seen again within the staleness time (or the
 * replay window), so it is taken as gone at `at`, by `span.stale`, the engine's name for that.
 */
export function goneFinding(open: Finding, at: Date): Finding {
  const f: Finding = structuredClone(open);
  const first = f.tasks[0];
  f.state = 'resolved';
  f.resolvedAt = at.toISOString();
  const formed = f.formedAt ? Date.parse(f.formedAt) : at.getTime();
  f.durationMs = Math.max(0, at.getTime() - formed);
  if (first) {
    const { service, serviceInstance, taskId, traceId, spanId } = first;
    f.brokenBy = { event: 'span.stale', task: { service, ...(serviceInstance !== undefined ? { serviceInstance } : {}), taskId, traceId, spanId }, at: f.resolvedAt };
  }
  f.summary = f.summary.replace(/^Deadlock:/, 'Deadlock (broken):');
  return f;
}

const HEADINGS: Record<AlertChangeKind, string> = {
  opened: 'DEADLOCK OPENED',
  resolved: 'DEADLOCK RESOLVED',
  potential: 'POTENTIAL DEADLOCK',
};

/** An alert as a block of text for a terminal: a heading line, then the finding as `analyze` shows it. */
export function renderAlertText(alert: Alert, style: Style): string {
  const paint = alert.change === 'opened' ? style.red : style.yellow;
  const latency = alert.detectionLatencyMs !== undefined ? ` (detected in ${alert.detectionLatencyMs} ms)` : '';
  const head = `${paint(style.bold(`[${alert.at}] ${HEADINGS[alert.change]}`))}${style.dim(latency)}`;
  return `${head}\n${renderFinding(alert.finding, style)}\n`;
}
