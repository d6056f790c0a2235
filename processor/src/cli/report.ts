/**
 * The readable report of `waitgraph analyze`: one block per finding, with a picture of the cycle, the
 * plain-language chain, the victims and the Jaeger links.
 */
import type { Finding } from '../../../schemas/index.js';

/** Colours, only when writing to a terminal. */
export interface Style {
  bold(s: string): string;
  red(s: string): string;
  yellow(s: string): string;
  dim(s: string): string;
}

/** A style that adds nothing. */
export const plain: Style = { bold: (s) => s, red: (s) => s, yellow: (s) => s, dim: (s) => s };

/** ANSI colours. */
export const ansi: Style = {
  bold: (s) => `\x1b[1m${s}\x1b[22m`,
  red: (s) => `\x1b[31m${s}\x1b[39m`,
  yellow: (s) => `\x1b[33m${s}\x1b[39m`,
  dim: (s) => `\x1b[2m${s}\x1b[22m`,
};

function heading(f: Finding, st: Style): string {
  if (f.kind === 'potential-deadlock') return st.yellow(st.bold('POTENTIAL DEADLOCK')) + st.dim(`  ${f.fingerprint}`);
  const word = f.state === 'active' ? st.red(st.bold('DEADLOCK (active)')) : st.yellow(st.bold('DEADLOCK (resolved)'));
  return word + st.dim(`  ${f.fingerprint}`);
}

/** The service of a task key (`service[/instance]\u0001taskId`). */
function calleeOf(key: string | undefined): string {
  return key === undefined ? 'another task' : key.split('\u0001')[0].split('/')[0];
}

/**
 * The cycle as a picture: each core task in a box-free ring, with what it waits on, the arrow closing
 * back to the first.
 *
 *   ┌─▶ billing:req-2   waits for lock "A"
 *   │     │
 *   │     ▼
 *   │   orders:req-1    waits for lock "B"
 *   └─────┘
 */
export function ring(f: Finding): string[] {
  if (f.tasks.length === 0) return [];
  const rows = f.tasks.map((t) => {
    const w = t.waitsFor[0];
    const what = !w
      ? ''
      : w.kind === 'child'
        ? `waits for its call into ${calleeOf(w.on?.[0])}`
        : w.kind === 'task'
          ? `waits for ${w.mode ?? 'all'} of ${w.on?.length ?? 0} task(s)`
          : `waits for ${w.kind}${w.resource ? ` "${w.resource}"` : ''}`;
    const holds = t.holds.map((h) => `${h.kind} "${h.resource}"${h.count && h.count > 1 ? ` x${h.count}` : ''}`).join(', ');
    return { name: `${t.service}:${t.taskId}`, what, holds };
  });
  const width = Math.max(...rows.map((r) => r.name.length));
  const out: string[] = [];
  if (rows.length === 1) {
    out.push(`  ┌─▶ ${rows[0].name}   ${rows[0].what}${rows[0].holds ? `, holds ${rows[0].holds}` : ''}`);
    out.push('  └─────┘  (it waits for itself)');
    return out;
  }
  rows.forEach((r, i) => {
    const lead = i === 0 ? '  ┌─▶ ' : '  │   ';
    out.push(`${lead}${r.name.padEnd(width)}   ${r.what}${r.holds ? `; holds ${r.holds}` : ''}`);
    if (i < rows.length - 1) {
      out.push('  │     │');
      out.push('  │     ▼');
    }
  });
  out.push('  └─────┘');
  return out;
}

/** One finding as text. */
export function renderFinding(f: Finding, st: Style = plain): string {
  const lines: string[] = [heading(f, st), `  ${f.summary}`];
  if (f.kind === 'deadlock') {
    if (f.formedAt) lines.push(st.dim(`  formed ${f.formedAt}${f.resolvedAt ? `, broken ${f.resolvedAt} after ${f.durationMs} ms by ${f.brokenBy?.event} in ${f.brokenBy?.task.service}:${f.brokenBy?.task.taskId}` : ''}`));
    lines.push('', ...ring(f));
  }
  lines.push('', ...f.chain.map((c) => `  ${c}`));
  if (f.victims && f.victims.count > 0) {
    const shown = f.victims.tasks.slice(0, 5).map((v) => `${v.service}:${v.taskId}`).join(', ');
    const more = f.victims.count > 5 ? `, and ${f.victims.count - 5} more` : '';
    lines.push('', `  ${f.victims.count} task${f.victims.count === 1 ? '' : 's'} blocked behind it: ${shown}${more}`);
  }
  lines.push('', st.dim('  Jaeger:'));
  for (const l of f.links) lines.push(st.dim(`    ${l.url}`));
  return lines.join('\n');
}

/** The whole report. */
export function renderReport(findings: Finding[], st: Style = plain): string {
  if (findings.length === 0) return 'No deadlocks found.';
  const active = findings.filter((f) => f.kind === 'deadlock' && f.state === 'active').length;
  const resolved = findings.filter((f) => f.kind === 'deadlock' && f.state === 'resolved').length;
  const potential = findings.length - active - resolved;
  const head = `${active} active deadlock${active === 1 ? '' : 's'}, ${resolved} resolved, ${potential} potential`;
  return [st.bold(head), '', ...findings.map((f) => renderFinding(f, st) + '\n')].join('\n').trimEnd();
}
