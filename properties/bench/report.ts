/** The benchmark's result object (--json), its table, its targets and the baseline comparison. */
import type { Figures, Row } from './detection.ts';
import type { MemoryFigures } from './memory.ts';
import type { STANDARD_MIX } from './mix.ts';
import { round } from './stats.ts';
import type { Throughput } from './throughput.ts';
import type { AllCores } from './workers.ts';

export interface MachineInfo {
  readonly nproc: number;
  readonly cpu: string;
  readonly node: string;
  readonly platform: string;
  readonly memoryMB: number;
}

export interface Target {
  readonly name: string;
  readonly goal: string;
  readonly value: number | null;
  readonly met: boolean;
}

export interface BenchResult {
  readonly schema: 1;
  readonly quick: boolean;
  readonly date: string;
  readonly machine: MachineInfo;
  readonly mix: typeof STANDARD_MIX & { readonly scenariosUsed: number; readonly variant: string };
  /** runScenario on one core, every observer on. */
  readonly singleCore: Throughput;
  /** One worker thread per core, each on a disjoint slice of the same list. */
  readonly allCores: AllCores & { readonly speedup: number };
  /** The same list on one core with the observers off; overhead = throughput off / on. */
  readonly observers: {
    readonly stepsPerSecOn: number;
    readonly stepsPerSecOff: number;
    readonly stepsOn: number;
    readonly stepsOff: number;
    readonly overhead: number;
  };
  readonly detection: {
    /** Which search strategies were measured (--strategies). */
    readonly strategies: Readonly<Record<string, 'measured' | 'not measured'>>;
    readonly seeds: readonly number[];
    readonly runsBudget: number;
    readonly shrinkTimeMs: number;
    /**
     * The slowest row median of each search, each row by its faster strategy (null: some row's
     * median is "not found" under every strategy).
     */
    readonly worstMedianMs: { readonly fuzz: number | null; readonly differential: number | null };
    readonly rows: readonly Row[];
  };
  readonly memory: MemoryFigures;
  readonly targets: readonly Target[];
  readonly comparison?: readonly Comparison[];
}

export const TARGETS = {
  stepsPerSecPerCore: 1_000_000,
  observerOverhead: 1.5,
  rowMedianMs: 1_000,
  peakRssMB: 400,
} as const;

export function evaluateTargets(r: Omit<BenchResult, 'targets'>): Target[] {
  const worst = r.detection.worstMedianMs;
  const rowTarget = (name: string, x: number | null): Target => ({
    name,
    goal: `<= ${TARGETS.rowMedianMs} ms`,
    value: x === null ? null : round(x),
    met: x !== null && x <= TARGETS.rowMedianMs,
  });
  return [
    {
      name: 'steps/s on one core, every invariant on',
      goal: `>= ${TARGETS.stepsPerSecPerCore.toLocaleString('en-US')}`,
      value: round(r.singleCore.stepsPerSec),
      met: r.singleCore.stepsPerSec >= TARGETS.stepsPerSecPerCore,
    },
    {
      name: 'observer overhead',
      goal: `<= ${TARGETS.observerOverhead}x`,
      value: round(r.observers.overhead, 2),
      met: r.observers.overhead <= TARGETS.observerOverhead,
    },
    rowTarget('every catalog row: median time to first violation (fuzz)', worst.fuzz),
    rowTarget("every catalog row: median time to the row's own bug (differential)", worst.differential),
    {
      name: `peak RSS of a ${r.memory.seconds} s ${r.memory.workers}-worker fuzz`,
      goal: `<= ${TARGETS.peakRssMB} MB`,
      value: round(r.memory.peakRssMB),
      met: r.memory.peakRssMB <= TARGETS.peakRssMB,
    },
  ];
}

// ---- text ------------------------------------------------------------------------------------

const int = (x: number) => Math.round(x).toLocaleString('en-US');
const ms = (x: number | null) => (x === null ? 'not found' : `${int(x)} ms`);

function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows
    .map((r) =>
      r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  '),
    )
    .join('\n');
}

export function formatText(r: BenchResult): string {
  const m = r.machine;
  const out: string[] = [];
  out.push(`atc-harness bench${r.quick ? ' (--quick: smoke figures, not comparable)' : ''}`);
  out.push(`machine: ${m.nproc} cores, ${m.cpu}, node ${m.node}, ${m.platform}, ${int(m.memoryMB)} MB`);
  const x = r.mix;
  out.push(
    `mix: ${x.scenariosUsed} scenarios of the standard mix (seed ${x.seed}) under ${x.variant}: ` +
      `${x.topology.cpus.join('-')} CPUs, ${x.topology.devices.join('-')} devices (${x.topology.sidsPerDevice.join('-')} SIDs, ` +
      `${x.topology.atsShare * 100}% ATS), ring ${2 ** x.topology.queueShift[0]}-${2 ** x.topology.queueShift[1]} slots, ` +
      `${x.rounds.join('-')} rounds of ${x.opsPerRound.join('-')} ops (${Object.entries(x.ops)
        .map(([k, w]) => `${k} ${w}`)
        .join(', ')}), choices 0-${x.choices.max}`,
  );
  out.push('');
  out.push(
    table([
      ['throughput', 'steps/s', 'scenarios/s', 'steps', 'best pass'],
      [
        'one core',
        int(r.singleCore.stepsPerSec),
        int(r.singleCore.scenariosPerSec),
        int(r.singleCore.steps),
        `${int(r.singleCore.bestMs)} ms`,
      ],
      [
        `all cores (${r.allCores.workers} workers)`,
        int(r.allCores.stepsPerSec),
        int(r.allCores.scenariosPerSec),
        int(r.allCores.steps),
        `${int(r.allCores.bestMs)} ms`,
      ],
      ['one core, observers off', int(r.observers.stepsPerSecOff), '', int(r.observers.stepsOff), ''],
    ]),
  );
  out.push(
    `observer overhead: ${r.observers.overhead.toFixed(2)}x; all-core speedup: ${r.allCores.speedup.toFixed(2)}x; ` +
      `${r.singleCore.violating} of ${r.singleCore.scenarios} scenarios violate something (measured all the same)`,
  );
  out.push('');
  const d = r.detection;
  const measured = Object.keys(d.strategies).filter((k) => d.strategies[k] === 'measured');
  out.push(
    `time to first violation per catalog row, ${d.seeds.length} seeds, budget ${int(d.runsBudget)} runs, ` +
      `shrink capped at ${int(d.shrinkTimeMs)} ms; strategies: ${Object.entries(d.strategies)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}`,
  );
  const shrink = (f: Figures) =>
    f.shrinkMedianMs === null ? '-' : `${int(f.shrinkMedianMs)}/${int(f.shrinkP90Ms ?? 0)}`;
  for (const strategy of measured) {
    out.push(`strategy ${strategy}:`);
    out.push(
      table([
        ['', 'fuzz()', '', '', '', '', "row's own bug", '', '', ''],
        [
          'catalog row',
          'found',
          'median',
          'p90',
          'shrink med/p90',
          'own',
          'found',
          'median',
          'p90',
          'shrink med/p90',
        ],
        ...d.rows.flatMap((row) => {
          const x = row.strategies[strategy as keyof Row['strategies']];
          if (x === undefined) return [];
          return [
            [
              row.flag,
              `${x.fuzz.found}/${row.seeds}`,
              ms(x.fuzz.medianMs),
              ms(x.fuzz.p90Ms),
              shrink(x.fuzz),
              `${x.fuzz.own}/${row.seeds}`,
              `${x.differential.found}/${row.seeds}`,
              ms(x.differential.medianMs),
              ms(x.differential.p90Ms),
              shrink(x.differential),
            ],
          ];
        }),
      ]),
    );
  }
  out.push(
    "  fuzz(): npm run fuzz under v4+FLAG, which stops at the first violation, possibly one of v4's own;" +
      ' own: its shrunk counterexample passes under v4.',
  );
  out.push(
    "  row's own bug: properties/catalog.ts detect(), the first scenario failing under v4+FLAG and passing under v4.",
  );
  out.push('');
  const mem = r.memory;
  out.push(
    `memory: ${mem.seconds} s fuzz of ${mem.variant} on ${mem.workers} workers: peak RSS ${int(mem.peakRssMB)} MB` +
      `${mem.vmHwmMB === null ? '' : ` (VmHWM ${int(mem.vmHwmMB)} MB)`}; ${int(mem.runs)} scenarios ` +
      `(${int(mem.scenariosPerSec)}/s with generation and shrinking), ${mem.searches} searches, ${mem.violations} found`,
  );
  out.push('');
  out.push('targets:');
  for (const t of r.targets) {
    out.push(
      `  ${t.met ? 'met    ' : 'NOT MET'}  ${t.name}: ${t.value === null ? 'n/a' : t.value} (goal ${t.goal})`,
    );
  }
  if (r.comparison !== undefined) {
    out.push('');
    out.push(formatComparison(r.comparison));
  }
  return out.join('\n');
}

// ---- baseline --------------------------------------------------------------------------------

export interface Comparison {
  readonly figure: string;
  readonly baseline: number | null;
  readonly current: number | null;
  /** current / baseline, or null when either is missing. */
  readonly ratio: number | null;
  readonly better: 'higher' | 'lower';
  /** ratio expressed so that > 1 is an improvement (null: unknown). */
  readonly gain: number | null;
}

type Figure = {
  readonly name: string;
  readonly better: 'higher' | 'lower';
  readonly get: (r: BenchResult) => number | null;
};

function figures(r: BenchResult, other: BenchResult): Figure[] {
  const list: Figure[] = [
    { name: 'one core steps/s', better: 'higher', get: (x) => x.singleCore.stepsPerSec },
    { name: 'one core scenarios/s', better: 'higher', get: (x) => x.singleCore.scenariosPerSec },
    { name: 'all cores steps/s', better: 'higher', get: (x) => x.allCores.stepsPerSec },
    { name: 'all cores scenarios/s', better: 'higher', get: (x) => x.allCores.scenariosPerSec },
    { name: 'observer overhead', better: 'lower', get: (x) => x.observers.overhead },
    { name: 'peak RSS MB', better: 'lower', get: (x) => x.memory.peakRssMB },
    { name: 'fuzz loop scenarios/s', better: 'higher', get: (x) => x.memory.scenariosPerSec },
  ];
  const flags = new Set([...r.detection.rows, ...other.detection.rows].map((row) => row.flag));
  for (const flag of flags) {
    const row = (x: BenchResult) => x.detection.rows.find((y) => y.flag === flag);
    for (const strategy of ['uniform', 'pct'] as const) {
      for (const which of ['fuzz', 'differential'] as const) {
        const tag = `${strategy} ${which === 'fuzz' ? 'fuzz' : 'own bug'}`;
        // An output from before both strategies were measured has no `strategies`: no figure.
        const get = (x: BenchResult) => row(x)?.strategies?.[strategy]?.[which];
        list.push({
          name: `${flag} ${tag}: median ms`,
          better: 'lower',
          get: (x) => get(x)?.medianMs ?? null,
        });
        list.push({
          name: `${flag} ${tag}: shrink median ms`,
          better: 'lower',
          get: (x) => get(x)?.shrinkMedianMs ?? null,
        });
      }
    }
  }
  return list;
}

/** Each figure of `current` against the same figure of `baseline` (a previous --json output). */
export function compare(current: BenchResult, baseline: BenchResult): Comparison[] {
  return figures(current, baseline).map((f) => {
    const b = f.get(baseline);
    const c = f.get(current);
    const ratio = b === null || c === null || b === 0 ? null : c / b;
    const gain = ratio === null || ratio === 0 ? null : f.better === 'higher' ? ratio : 1 / ratio;
    return { figure: f.name, baseline: b, current: c, ratio, better: f.better, gain };
  });
}

export function formatComparison(cs: readonly Comparison[]): string {
  const num = (x: number | null) => (x === null ? '-' : Math.abs(x) >= 100 ? int(x) : x.toFixed(2));
  return [
    'against the baseline (ratio = now / baseline; gain > 1 is better):',
    table([
      ['figure', 'baseline', 'now', 'ratio', 'gain'],
      ...cs.map((c) => [
        c.figure,
        num(c.baseline),
        num(c.current),
        c.ratio === null ? '-' : `${c.ratio.toFixed(2)}x`,
        c.gain === null
          ? '-'
          : `${c.gain.toFixed(2)}x${c.gain >= 1.05 ? ' better' : c.gain <= 0.95 ? ' worse' : ''}`,
      ]),
    ]),
  ].join('\n');
}

/** The parts of a --json output compare() reads; anything else in the file is ignored. */
export function isBenchResult(x: unknown): x is BenchResult {
  if (typeof x !== 'object' || x === null) return false;
  const r = x as Partial<BenchResult>;
  return (
    r.schema === 1 &&
    typeof r.singleCore?.stepsPerSec === 'number' &&
    typeof r.allCores?.stepsPerSec === 'number' &&
    typeof r.observers?.overhead === 'number' &&
    typeof r.memory?.peakRssMB === 'number' &&
    Array.isArray(r.detection?.rows)
  );
}
