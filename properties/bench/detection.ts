/**
 * Time to first violation per catalog row, on the calling thread, from several seeds with a runs
 * budget; and the time the shrink took. Per search strategy (uniform choice streams, PCT
 * priority schedules: properties/scenario.ts arbFor), two searches per seed:
 *
 * - fuzz(): what `npm run fuzz -- --variant v4+FLAG` does. It stops at the first violation,
 *   which may be one of v4's own findings rather than the row's bug; `own` counts the seeds whose
 *   shrunk counterexample passes under v4, i.e. shows the row's bug.
 * - detect() (properties/catalog.ts): the first scenario that fails under v4+FLAG and passes
 *   under v4, i.e. the time to find the row's own bug.
 */
import { Variant } from '../../impl/variants.ts';
import { detect } from '../catalog.ts';
import { fuzz } from '../fuzz.ts';
import { runScenario } from '../runner.ts';
import { arbFor, type Strategy } from '../scenario.ts';
import { finiteOrNull, median, quantile } from './stats.ts';

export interface SeedRun {
  readonly seed: number;
  /** Search time to the first violation, ms; null when the budget ran out first. */
  readonly ms: number | null;
  /** Scenarios run until then (the whole budget if none was found). */
  readonly runs: number;
  readonly shrinkMs: number | null;
  readonly property: string | null;
  /** The shrunk counterexample passes under v4: it shows the row's bug, not a v4 finding. */
  readonly own: boolean;
}

export interface Figures {
  readonly found: number;
  /** Median and p90 over the seeds of the time to the first violation, ms (null: not found). */
  readonly medianMs: number | null;
  readonly p90Ms: number | null;
  readonly medianRuns: number | null;
  readonly shrinkMedianMs: number | null;
  readonly shrinkP90Ms: number | null;
  /** Seeds whose counterexample is the row's own (always all found ones for detect()). */
  readonly own: number;
  /** Properties found, with how many seeds found each. */
  readonly properties: Readonly<Record<string, number>>;
  readonly runs: readonly SeedRun[];
}

/** The two searches of one strategy. */
export interface Searches {
  readonly fuzz: Figures;
  readonly differential: Figures;
}

export interface Row {
  readonly flag: string;
  readonly seeds: number;
  /** Per strategy measured (see DetectionOptions.strategies). */
  readonly strategies: Partial<Record<Strategy, Searches>>;
}

function figures(runs: readonly SeedRun[]): Figures {
  const inf = (x: number | null) => x ?? Number.POSITIVE_INFINITY;
  const properties: Record<string, number> = {};
  for (const r of runs) if (r.property !== null) properties[r.property] = (properties[r.property] ?? 0) + 1;
  const found = runs.filter((r) => r.ms !== null);
  return {
    found: found.length,
    medianMs: finiteOrNull(median(runs.map((r) => inf(r.ms)))),
    p90Ms: finiteOrNull(
      quantile(
        runs.map((r) => inf(r.ms)),
        0.9,
      ),
    ),
    medianRuns: finiteOrNull(median(runs.map((r) => (r.ms === null ? Number.POSITIVE_INFINITY : r.runs)))),
    shrinkMedianMs: found.length > 0 ? median(found.map((r) => r.shrinkMs!)) : null,
    shrinkP90Ms:
      found.length > 0
        ? quantile(
            found.map((r) => r.shrinkMs!),
            0.9,
          )
        : null,
    own: runs.filter((r) => r.own).length,
    properties,
    runs,
  };
}

export interface DetectionOptions {
  readonly runs: number;
  readonly shrinkTimeMs: number;
}

export function fuzzRun(flag: string, seed: number, strategy: Strategy, opts: DetectionOptions): SeedRun {
  const r = fuzz({
    variant: Variant.parse(`v4+${flag}`),
    seed,
    runs: opts.runs,
    shrinkTimeMs: opts.shrinkTimeMs,
    arbitrary: arbFor(strategy),
  });
  const found = r.violation;
  if (found === null) return { seed, ms: null, runs: r.runs, shrinkMs: null, property: null, own: false };
  return {
    seed,
    ms: r.elapsedMs,
    runs: found.runsToDetect,
    shrinkMs: r.shrinkMs,
    property: found.property,
    own: runScenario(found.scenario, Variant.parse('v4')).violations.length === 0,
  };
}

export function differentialRun(
  flag: string,
  seed: number,
  strategy: Strategy,
  opts: DetectionOptions,
): SeedRun {
  const d = detect(flag, seed, { runs: opts.runs, shrinkTimeMs: opts.shrinkTimeMs, strategy });
  if (!d.detected) return { seed, ms: null, runs: d.runs, shrinkMs: null, property: null, own: false };
  return {
    seed,
    ms: Math.round(d.msToDetect),
    runs: d.runs,
    shrinkMs: Math.round(d.shrinkMs),
    property: d.property,
    own: true,
  };
}

export function measureRow(
  flag: string,
  seeds: readonly number[],
  strategies: readonly Strategy[],
  opts: DetectionOptions,
): Row {
  const per: Partial<Record<Strategy, Searches>> = {};
  for (const st of strategies) {
    per[st] = {
      fuzz: figures(seeds.map((seed) => fuzzRun(flag, seed, st, opts))),
      differential: figures(seeds.map((seed) => differentialRun(flag, seed, st, opts))),
    };
  }
  return { flag, seeds: seeds.length, strategies: per };
}

/**
 * The slowest row median of one search, taking for each row the faster of the strategies
 * measured (a row counts as found when either finds it); null when some row is not found.
 */
export function worstMedian(rows: readonly Row[], which: keyof Searches): number | null {
  let worst = 0;
  for (const row of rows) {
    const medians = Object.values(row.strategies)
      .map((s) => s[which].medianMs)
      .filter((x): x is number => x !== null);
    if (medians.length === 0) return null;
    worst = Math.max(worst, Math.min(...medians));
  }
  return worst;
}
