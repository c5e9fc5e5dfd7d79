/**
 * npm run bench [-- --json] [--quick] [--baseline FILE] [--rows FLAG,...] [--strategies S,...]
 *                           [--seeds N] [--runs N] [--memory-seconds N] [--workers N]
 *
 * How fast the harness searches and what it costs, on the standard scenario mix
 * (properties/bench/mix.ts) with fixed seeds: simulated steps and scenarios per second on one core
 * and on every core, the observers' overhead, time to first violation and shrink time per catalog
 * row, and the peak memory of a fuzz on every core. `--json` prints one object (the last line);
 * `--baseline FILE` (a previous --json output) adds each figure's ratio to it. `--quick` is a
 * smoke run whose figures are not comparable. Exit 0, or 2 on bad input (one line on stderr).
 * Targets are reported, never enforced.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { FLAGS, Variant } from '../../impl/variants.ts';
import { STRATEGIES, type Strategy } from '../scenario.ts';
import { measureRow, type Row, worstMedian } from '../bench/detection.ts';
import { measureMemory } from '../bench/memory.ts';
import { STANDARD_MIX, standardScenarios } from '../bench/mix.ts';
import {
  type BenchResult,
  compare,
  evaluateTargets,
  formatText,
  isBenchResult,
  type MachineInfo,
} from '../bench/report.ts';
import { measureSingleCore } from '../bench/throughput.ts';
import { measureAllCores } from '../bench/workers.ts';
import { exitUsage, intArg, UsageError, parseCli } from './args.ts';

const fail: (msg: string) => never = (msg) => exitUsage('bench', msg);

function parse() {
  return parseCli('bench', {
    allowPositionals: false,
    options: {
      json: { type: 'boolean' },
      quick: { type: 'boolean' },
      baseline: { type: 'string' },
      rows: { type: 'string' },
      strategies: { type: 'string' },
      seeds: { type: 'string' },
      runs: { type: 'string' },
      'memory-seconds': { type: 'string' },
      workers: { type: 'string' },
    },
  });
}

interface Settings {
  readonly json: boolean;
  readonly quick: boolean;
  readonly baseline: BenchResult | null;
  readonly rows: readonly string[];
  readonly strategies: readonly Strategy[];
  readonly seeds: readonly number[];
  readonly runs: number;
  readonly shrinkTimeMs: number;
  readonly memorySeconds: number;
  readonly workers: number;
  readonly scenarios: number;
  readonly passes: number;
}

const THROUGHPUT_VARIANT = 'v4';

function settings(): Settings {
  const a = parse().values;
  const quick = a.quick ?? false;
  try {
    const known: readonly string[] = FLAGS.map((f) => f.id);
    const rows = a.rows === undefined ? (quick ? known.slice(0, 2) : known) : a.rows.split(',');
    for (const r of rows) {
      if (!known.includes(r)) throw new UsageError(`unknown catalog row '${r}' (known: ${known.join(', ')})`);
    }
    // By default the two kinds of schedule, each on its own ('both' mixes them: scenario.ts).
    const strategies = a.strategies === undefined ? ['uniform', 'pct'] : a.strategies.split(',');
    for (const x of strategies) {
      if (!(STRATEGIES as readonly string[]).includes(x))
        throw new UsageError(`unknown strategy '${x}' (known: ${STRATEGIES.join(', ')})`);
    }
    const nSeeds = intArg('seeds', a.seeds, 1) ?? (quick ? 2 : 10);
    let baseline: BenchResult | null = null;
    if (a.baseline !== undefined) {
      let text: string;
      try {
        text = readFileSync(a.baseline, 'utf8');
      } catch {
        throw new UsageError(`cannot read --baseline ${a.baseline}`);
      }
      const last = text.trim().split('\n').at(-1) ?? '';
      let parsed: unknown;
      try {
        parsed = JSON.parse(last);
      } catch {
        parsed = null;
      }
      if (!isBenchResult(parsed))
        throw new UsageError(`--baseline ${a.baseline} is not a bench --json output`);
      baseline = parsed;
    }
    return {
      json: a.json ?? false,
      quick,
      baseline,
      rows,
      strategies: strategies as Strategy[],
      seeds: Array.from({ length: nSeeds }, (_, i) => i + 1),
      runs: intArg('runs', a.runs, 1) ?? (quick ? 300 : 3000),
      shrinkTimeMs: quick ? 2_000 : 30_000,
      memorySeconds: intArg('memory-seconds', a['memory-seconds'], 1) ?? (quick ? 3 : 60),
      workers: intArg('workers', a.workers, 1) ?? os.availableParallelism(),
      scenarios: quick ? 200 : STANDARD_MIX.scenarios,
      passes: quick ? 1 : 5,
    };
  } catch (e) {
    if (e instanceof UsageError) fail(e.message);
    throw e;
  }
}

function machineInfo(): MachineInfo {
  let cpu = os.cpus()[0]?.model ?? 'unknown';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) cpu = m[1]!.trim();
  } catch {
    // not Linux: os.cpus() it is
  }
  return {
    nproc: os.availableParallelism(),
    cpu,
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    memoryMB: Math.round(os.totalmem() / 2 ** 20),
  };
}

const progress = (s: string) => process.stderr.write(`bench: ${s}\n`);

async function main(): Promise<number> {
  const st = settings();
  const v = Variant.parse(THROUGHPUT_VARIANT);
  const list = standardScenarios(st.scenarios, STANDARD_MIX.seed);

  progress(`one core: ${list.length} scenarios, observers on and off, ${st.passes} pass(es) each`);
  const single = measureSingleCore(list, v, st.passes);

  progress(`all cores: ${st.workers} worker thread(s)`);
  const all = await measureAllCores({
    workers: st.workers,
    variant: THROUGHPUT_VARIANT,
    scenarios: st.scenarios,
    seed: STANDARD_MIX.seed,
    passes: st.passes,
  });

  const rows: Row[] = [];
  for (const flag of st.rows) {
    progress(
      `time to first violation: v4+${flag}, ${st.seeds.length} seed(s), ${st.strategies.join(' and ')}`,
    );
    rows.push(measureRow(flag, st.seeds, st.strategies, { runs: st.runs, shrinkTimeMs: st.shrinkTimeMs }));
  }

  progress(`memory: ${st.memorySeconds} s fuzz of ${THROUGHPUT_VARIANT} on ${st.workers} worker(s)`);
  const memory = await measureMemory({
    seconds: st.memorySeconds,
    workers: st.workers,
    variant: THROUGHPUT_VARIANT,
    firstSeed: 1,
  });

  const partial: Omit<BenchResult, 'targets'> = {
    schema: 1,
    quick: st.quick,
    date: new Date().toISOString(),
    machine: machineInfo(),
    mix: { ...STANDARD_MIX, scenariosUsed: list.length, variant: THROUGHPUT_VARIANT },
    singleCore: single.on,
    allCores: { ...all, speedup: all.stepsPerSec / single.on.stepsPerSec },
    observers: {
      stepsPerSecOn: single.on.stepsPerSec,
      stepsPerSecOff: single.off.stepsPerSec,
      stepsOn: single.on.steps,
      stepsOff: single.off.steps,
      overhead: single.off.stepsPerSec / single.on.stepsPerSec,
    },
    detection: {
      strategies: Object.fromEntries(
        STRATEGIES.map((x) => [x, st.strategies.includes(x) ? 'measured' : 'not measured']),
      ),
      seeds: st.seeds,
      runsBudget: st.runs,
      shrinkTimeMs: st.shrinkTimeMs,
      worstMedianMs: { fuzz: worstMedian(rows, 'fuzz'), differential: worstMedian(rows, 'differential') },
      rows,
    },
    memory,
  };
  const withTargets: BenchResult = { ...partial, targets: evaluateTargets(partial) };
  const result: BenchResult =
    st.baseline === null ? withTargets : { ...withTargets, comparison: compare(withTargets, st.baseline) };
  process.stdout.write(st.json ? `${JSON.stringify(result)}\n` : `${formatText(result)}\n`);
  return 0;
}

process.exitCode = await main();
