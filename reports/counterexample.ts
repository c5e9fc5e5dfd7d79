/**
 * Renders a found violation for a human: the property, the shrunk scenario, and the
 * interleaving diagram with the kernel log inline.
 */
import { fmtOp, type Topology } from '../impl/system.ts';
import type { RunResult } from '../properties/runner.ts';
import type { Scenario } from '../properties/scenario.ts';
import { renderTimeline } from './timeline.ts';

export function fmtTopology(t: Topology): string[] {
  const lines = [
    `${t.cpus} CPU(s); GERROR IRQ on cpu${t.gerrorIrqCpu}; command queue ${1 << t.queueShift} entries; batch ${t.batchEntries}; ATC invalidation timeout ${t.atcTimeoutUs / 1000} ms`,
  ];
  t.devices.forEach((d, i) => {
    lines.push(`dev${i}: ${d.ats ? 'ATS' : 'no ATS'}, ${d.sids} stream ID(s), own group, on domain 0`);
  });
  lines.push(
    `domain 0 maps IOVA ${Array.from({ length: t.iovas }, (_, i) => i).join(', ')}; domain 1 is empty`,
  );
  return lines;
}

export function fmtScenario(s: Scenario): string {
  const out = ['topology:', ...fmtTopology(s.topology).map((l) => `  ${l}`)];
  s.rounds.forEach((r, i) => {
    out.push(`round ${i + 1}${r.length > 1 ? ' (concurrent)' : ''}:`);
    for (const op of r) out.push(`  ${fmtOp(op)}`);
  });
  out.push(`choices: [${s.choices.join(', ')}]${s.choices.length === 0 ? ' (fair default schedule)' : ''}`);
  return out.join('\n');
}

/** The diagram of a traced run, starting at the first scenario round (probe steps omitted). */
export function fmtTimeline(run: RunResult, width = 80): string {
  const from = run.roundStarts[0] ?? 0;
  return renderTimeline(
    run.trace.filter((t) => t.step > from),
    run.log.filter((l) => l.step > from),
    { width },
  );
}
