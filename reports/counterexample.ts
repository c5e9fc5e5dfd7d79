/**
 * Renders a found violation for a human: the property, the shrunk scenario, and the
 * interleaving diagram with the kernel log inline.
 */
import { fmtOp, type Topology } from '../impl/system.ts';
import { FIX_PREFIX, FIXES, FLAGS, Variant } from '../impl/variants.ts';
import { PROPERTIES } from '../properties/invariants.ts';
import type { RunResult } from '../properties/runner.ts';
import type { Scenario } from '../properties/scenario.ts';
import { renderTimeline, wrapText } from './timeline.ts';

export function fmtTopology(t: Topology): string[] {
  const lines = [
    `${t.cpus} CPU(s); GERROR IRQ on cpu${t.gerrorIrqCpu}; command queue ${1 << t.queueShift} entries; batch ${t.batchEntries}; ATC invalidation timeout ${t.atcTimeoutUs / 1000} ms${t.stalls ? '; CPUs can stall (time may pass while they are runnable)' : ''}${t.vcmdq ? `; tegra241 VCMDQ (TLBI, ATC_INV) with its error IRQ on cpu${t.vcmdq.irqCpu}` : ''}`,
  ];
  t.devices.forEach((d, i) => {
    const traits = [
      d.ats ? 'ATS' : 'no ATS',
      ...(d.noAts ? ['quirked no-ATS'] : []),
      ...(d.pf !== undefined ? [`VF of dev${d.pf}`] : []),
      ...(d.quirk ? ['quirk reset method'] : []),
      ...(d.flr === false ? ['no FLR'] : []),
      ...(d.acpiRst ? [`ACPI _RST ${d.acpiRst === 'works' ? 'that works' : 'that fails'}`] : []),
      ...(d.afFlr ? ['AF FLR'] : []),
      ...(d.pmReset ? ['PM reset (D3hot->D0)'] : []),
      ...(d.busReset ? ['alone on its bus'] : []),
      ...(d.cxlBus ? ['below a CXL port that masks SBR'] : []),
      ...(d.dmaAliasOf !== undefined ? [`DMA alias of dev${d.dmaAliasOf}`] : []),
      `${d.sids} stream ID(s)`,
    ];
    lines.push(`dev${i}: ${traits.join(', ')}, own group, on domain 0`);
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

/**
 * What a variant is, in words: the preset, each fix of its findings, and for each flag the bug it
 * puts back. `name` is a variant's name (Variant.parse takes it).
 */
export function describeVariant(name: string): string {
  const v = Variant.parse(name);
  const base =
    v.preset === 'mainline'
      ? 'mainline: the kernel before the series'
      : v.preset === 'v4'
        ? 'v4: the series as posted'
        : 'v4-minimal: the driver-only design asked for in review (no core worker, blame the batch)';
  // In the order the canonical name gives them: v4-fixed's in FIXES order, tokens sorted.
  const fixIds = FIXES.every((f) => v.fix(f.id)) ? FIXES.map((f) => f.id) : [...v.fixes].sort();
  const fixes = fixIds.map((id) => {
    const f = FIXES.find((x) => x.id === id)!;
    return `${FIX_PREFIX}${id} (for ${f.finding}): ${f.summary}`;
  });
  const bugs = [...v.flags].sort().map((id) => {
    const f = FLAGS.find((x) => x.id === id)!;
    return `${id} (${f.source}): ${f.summary}`;
  });
  return [
    base,
    ...(fixes.length === 0
      ? []
      : [
          `with ${fixes.length === 1 ? 'one fix' : `${fixes.length} fixes`} of its findings: ${fixes.join('; ')}`,
        ]),
    ...(bugs.length === 0
      ? []
      : [`with ${bugs.length === 1 ? 'one bug' : `${bugs.length} bugs`} put back: ${bugs.join('; ')}`]),
  ].join(', ');
}

const FIELD = 10;

/**
 * A shell command in lines of at most `width` columns, each but the last ending in a backslash,
 * which the shell removes with the line break even inside a word: still one copy-paste. Only
 * the first line is indented (spaces at the start of a continuation would split a word).
 */
export function shellLines(cmd: string, width: number, indent: number): string[] {
  const lines: string[] = [];
  let rest = [...cmd];
  let room = width - indent - 1;
  while (rest.length > room + 1) {
    let cut = room;
    for (let i = room; i > room / 2; i--) {
      if (rest[i - 1] === ' ' || rest[i - 1] === '/') {
        cut = i;
        break;
      }
    }
    lines.push(`${rest.slice(0, cut).join('')}\\`);
    rest = rest.slice(cut);
    room = width - 1;
  }
  lines.push(rest.join(''));
  return lines.map((l, i) => (i === 0 ? ' '.repeat(indent) + l : l));
}

export interface CounterexampleText {
  readonly id: string;
  readonly variant: string;
  /** The property reported (may be `harness-nondeterminism`). */
  readonly property: string;
  readonly message: string;
  readonly scenario: Scenario;
  /** The traced replay of `scenario`. */
  readonly run: RunResult;
  /** How it was found, in words (e.g. `after 50 scenarios, seed 1, shard 1/1`). */
  readonly found: string;
  readonly shrunk: { ops: number; rounds: number; choices: number };
  readonly original: { ops: number; rounds: number; choices: number };
  /** The command that replays it. */
  readonly replay: string;
}

/**
 * timeline.txt: a counterexample a kernel developer reads without the harness' code: what was
 * violated and what that property means, the setup and operations in kernel terms, the
 * interleaving diagram with the kernel log inline, and how to replay it. At most `width` columns.
 */
export function fmtCounterexampleText(c: CounterexampleText, width = 80): string {
  const out: string[] = [];
  const para = (text: string, indent = 0, hang = 2) =>
    out.push(...wrapText(text, width - indent, hang).map((l) => ' '.repeat(indent) + l));
  const info = PROPERTIES.find((p) => p.id === c.property);
  const field = (label: string, text: string) => {
    const lines = wrapText(text, width - FIELD);
    out.push(...lines.map((l, i) => (i === 0 ? label.padEnd(FIELD) : ' '.repeat(FIELD)) + l));
  };
  para(`atc-harness counterexample ${c.id}`);
  out.push('');
  field('variant:', describeVariant(c.variant));
  field(
    'property:',
    `${c.property}${info ? ` (${info.kind}): ${info.summary}` : c.property === 'harness-nondeterminism' ? ': the harness did not replay its own counterexample; a bug in the harness, not in the kernel code' : ''}`,
  );
  field('violated:', c.message);
  field('found:', c.found);
  field(
    'shrunk:',
    `to ${c.shrunk.ops} operation(s) in ${c.shrunk.rounds} round(s) and ${c.shrunk.choices} scheduling choice(s), from ${c.original.ops} in ${c.original.rounds} and ${c.original.choices}`,
  );
  const others = c.run.violations.filter((v) => v.property !== c.property);
  if (others.length > 0) {
    out.push('also violated in this run:');
    for (const o of others) para(`${o.property}: ${o.message}`, 2, 2);
  }
  out.push('');
  out.push('setup (each round runs its operations concurrently; a round ends when all is');
  out.push('quiet: threads done, interrupts taken, work run, hardware idle):');
  for (const line of fmtScenario(c.scenario).split('\n')) {
    const indent = line.length - line.trimStart().length;
    para(line.trimStart(), indent + 2, 4);
  }
  out.push('');
  out.push('timeline: one column per CPU (task context), per CPU interrupt context and for');
  out.push('the hardware (SMMU, endpoints); time runs down; "! " lines are the kernel log;');
  out.push('"---- t ----" lines are virtual time advancing.');
  out.push('');
  out.push(fmtTimeline(c.run, width));
  out.push('');
  out.push('replay (from the repository root):');
  out.push(...shellLines(c.replay, width, 2));
  return `${out.map((l) => l.trimEnd()).join('\n')}\n`;
}
