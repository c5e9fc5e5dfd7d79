/**
 * npm run catalog [-- --json] [--seeds K] [--runs N] [--budget SECONDS] [--strategy uniform|pct|both]
 *                  [--base v4|v4-fixed] [--workers N] [--flag ID ...] [--out DIR]
 *
 * For each catalog flag: K seeds of differential search (fails under v4+flag, passes under v4)
 * with the generic scenario arbitraries (for each modelled known limit: fails under v4 with the
 * limit's option on, passes without; --flag also takes a limit's id), each until the first such
 * scenario or the budget (--runs N also caps the runs, for a result that no machine's speed
 * changes); shrink; report detection, the property that fired, runs and milliseconds to detect (median,
 * max), shrink time and the shrunk size beside the witness's size; and the protocol coverage
 * (properties/coverage.ts) of the searches under v4+flag, per row and over all rows.
 * `--base v4-fixed` searches v4 with the fixes proposed for its own findings instead (flag rows:
 * fails under v4-fixed+flag, passes under v4-fixed), where a flag cannot be credited with one of
 * v4's own bugs that its different timing reaches; on v4, the last column counts the finds that
 * are differentials on v4-fixed too (Detection.confirmedOnFixed). A masked row (witnesses.ts
 * MASKED) is searched on the base with the flags that take the masking code out; its entry's
 * `baseline` says so.
 * --workers N (default: all cores) searches each seed on N worker threads (catalog-pool.ts);
 * --workers 1 on this thread, the same result every time for a given --runs.
 * Every shrunk find is written as soon as it is shrunk, as `<row>-seed<k>.json` (a counterexample
 * file `npm run replay` reads) in --out DIR (empty or new; default a fresh reports/out/ folder),
 * and the JSON object goes there as summary.json at the end: a long run that is stopped keeps
 * what it had found.
 */
import { mkdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { V4_FIXED } from '../../impl/variants.ts';
import { writeFileAtomic } from '../../reports/atomic.ts';
import {
  type Base,
  BASES,
  baselineOf,
  catalogRows,
  type Detection,
  detect,
  failingVariantOf,
} from '../catalog.ts';
import { CatalogPool } from '../catalog-pool.ts';
import { Coverage, fmtCoverageLine } from '../coverage.ts';
import { scenarioSize, STRATEGIES, type Strategy } from '../scenario.ts';
import { witnessOf } from '../witnesses/witnesses.ts';
import { counterexampleJson } from '../engine/corpus.ts';
import { exitUsage, intArg, MAX_WORKERS, parseCli, UsageError } from './args.ts';
import { type OutDir, outDir } from './out-dir.ts';
import { fmtTable } from './table.ts';

const fail: (msg: string) => never = (msg) => exitUsage('catalog', msg);

/** fast-check's numRuns without --runs: the budget ends every search first. */
const NO_CAP = 2 ** 31 - 1;

/** One row of the table (and of the JSON's entries). */
interface Entry {
  readonly id: string;
  readonly baseline: string;
  readonly detected: boolean;
  readonly seedsDetected: number;
  readonly seeds: number;
  readonly property: string | null;
  readonly runsToDetectMedian: number;
  readonly msToDetectMedian: number;
  readonly msToDetectMax: number | null;
  readonly shrinkMsMedian: number;
  readonly shrunkOps: number | null;
  readonly shrunkChoices: number | null;
  readonly witnessOps: number | null;
  readonly witnessChoices: number | null;
  readonly coverage: { readonly ops: number; readonly transitions: number };
  /** The shrunk finds' files in the out folder, one per seed that found the row. */
  readonly finds: readonly string[];
  /**
   * Searched on v4: those of the finds that are differentials on v4-fixed too, so none of v4's
   * own findings (Detection.confirmedOnFixed); null on v4-fixed.
   */
  readonly confirmedOnFixed: readonly string[] | null;
}

const median = (xs: number[]): number => {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function main(): Promise<number> {
  const { values } = parseCli('catalog', {
    options: {
      json: { type: 'boolean' },
      seeds: { type: 'string' },
      runs: { type: 'string' },
      budget: { type: 'string' },
      strategy: { type: 'string' },
      base: { type: 'string' },
      flag: { type: 'string', multiple: true },
      workers: { type: 'string' },
      out: { type: 'string' },
    },
  });
  let seeds: number;
  let runs: number | null;
  let budgetMs: number;
  let workers: number;
  let dir: OutDir;
  try {
    workers =
      intArg('workers', values.workers, 1, MAX_WORKERS) ?? Math.min(MAX_WORKERS, availableParallelism());
    seeds = intArg('seeds', values.seeds, 1) ?? 10;
    runs = intArg('runs', values.runs, 1) ?? null;
    budgetMs = (intArg('budget', values.budget, 1) ?? 30) * 1000;
  } catch (e) {
    if (e instanceof UsageError) fail(e.message);
    throw e;
  }
  const strategy = (values.strategy ?? 'both') as Strategy;
  if (!STRATEGIES.includes(strategy))
    fail(`unknown --strategy '${strategy}' (known: ${STRATEGIES.join(', ')})`);
  const given = values.base ?? 'v4';
  if (!(BASES as readonly string[]).includes(given))
    fail(`unknown --base '${given}' (known: ${BASES.join(', ')})`);
  const base = given as Base;
  try {
    dir = outDir(values.out, `catalog-${base}`);
  } catch (e) {
    if (e instanceof UsageError) fail(e.message);
    throw e;
  }
  const rows = catalogRows();
  const ids = values.flag ?? rows;
  for (const id of ids) if (!rows.includes(id)) fail(`unknown row '${id}' (known: ${rows.join(', ')})`);
  // Arguments are valid: only now is anything written.
  try {
    mkdirSync(dir.out, { recursive: true });
  } catch (e) {
    fail(`cannot create ${dir.displayOut}: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!values.json) process.stderr.write(`catalog: finds are saved in ${dir.displayOut}\n`);
  /** Writes a find at once, so that nothing a long run found is lost if it is stopped. */
  const save = (d: Detection): string | null => {
    if (!d.detected) return null;
    const file = `${d.flag}-seed${d.seed}.json`;
    const variant = failingVariantOf(d.flag, base);
    writeFileAtomic(join(dir.out, file), counterexampleJson(variant, d.shrunkProperty!, d.scenario!));
    return file;
  };

  // One worker: detect() on this thread (what `npm test` runs). More: every seed on all of them.
  const pool = workers > 1 ? await CatalogPool.start(workers) : null;
  const all = new Coverage();
  const entries: Entry[] = [];
  for (const id of ids) {
    const coverage = new Coverage();
    const opts = { runs: runs ?? NO_CAP, timeMs: budgetMs, strategy, coverage, base };
    const ds: Detection[] = [];
    const finds: string[] = [];
    const confirmed: string[] = [];
    for (let seed = 1; seed <= seeds; seed++) {
      const d = pool === null ? detect(id, seed, opts) : await pool.detect(id, seed, opts);
      ds.push(d);
      const file = save(d);
      if (file !== null) finds.push(file);
      if (file !== null && d.confirmedOnFixed === true) confirmed.push(file);
    }
    const hits = ds.filter((d) => d.detected);
    const props = [...new Set(hits.map((d) => d.property!))];
    const w = witnessOf(id, base);
    const ws = w ? scenarioSize(w) : null;
    all.merge(coverage);
    const cov = coverage.report();
    entries.push({
      id,
      // What the row's scenarios must pass under: the base, or for a masked row the base with
      // the flags that take the masking code out (witnesses.ts MASKED).
      baseline: baselineOf(id, base),
      detected: hits.length === ds.length,
      seedsDetected: hits.length,
      seeds: ds.length,
      property: props.join(',') || null,
      runsToDetectMedian: median(hits.map((d) => d.runs)),
      msToDetectMedian: Math.round(median(hits.map((d) => d.msToDetect))),
      msToDetectMax: hits.length ? Math.round(Math.max(...hits.map((d) => d.msToDetect))) : null,
      shrinkMsMedian: Math.round(median(hits.map((d) => d.shrinkMs))),
      shrunkOps: hits.length ? Math.max(...hits.map((d) => d.shrunk!.ops)) : null,
      shrunkChoices: hits.length ? Math.max(...hits.map((d) => d.shrunk!.choices)) : null,
      witnessOps: ws?.ops ?? null,
      witnessChoices: ws?.choices ?? null,
      coverage: { ops: cov.ops.visited, transitions: cov.transitions.visited },
      finds,
      confirmedOnFixed: base === V4_FIXED ? null : confirmed,
    });
  }
  await pool?.close();
  const total = all.report();
  const summary = `${JSON.stringify({
    seeds,
    runs,
    budgetMs,
    base,
    workers,
    entries,
    coverage: {
      ops: { visited: total.ops.visited, total: total.ops.total, never: total.ops.never },
      transitions: {
        visited: total.transitions.visited,
        total: total.transitions.total,
        never: total.transitions.never,
      },
    },
    out: dir.displayOut,
  })}\n`;
  writeFileAtomic(join(dir.out, 'summary.json'), summary);
  if (values.json) {
    process.stdout.write(summary);
  } else {
    const head = [
      'row',
      'found',
      'property',
      'runs(med)',
      'ms(med)',
      'ms(max)',
      'shrink ms',
      'ops/witness',
      'own on fixed',
    ];
    const rows = entries.map((e) => [
      e.baseline === base ? e.id : `${e.id} (on ${e.baseline})`,
      `${e.seedsDetected}/${e.seeds}`,
      e.property ?? '-',
      Number.isNaN(e.runsToDetectMedian) ? '-' : String(e.runsToDetectMedian),
      Number.isNaN(e.msToDetectMedian) ? '-' : String(e.msToDetectMedian),
      e.msToDetectMax === null ? '-' : String(e.msToDetectMax),
      Number.isNaN(e.shrinkMsMedian) ? '-' : String(e.shrinkMsMedian),
      `${e.shrunkOps ?? '-'}/${e.witnessOps ?? '-'}`,
      e.confirmedOnFixed === null ? '-' : `${e.confirmedOnFixed.length}/${e.finds.length}`,
    ]);
    process.stdout.write(fmtTable(head, rows));
    process.stdout.write(
      `\n${seeds} seeds per row, ${runs === null ? '' : `${runs} runs or `}${budgetMs / 1000} s per seed, strategy ${strategy}, base ${base}, ${workers} worker(s)\n`,
    );
    process.stdout.write(`coverage of the searches (all rows): ${fmtCoverageLine(total)}\n`);
    const n = entries.reduce((k, e) => k + e.finds.length, 0);
    process.stdout.write(
      `${n} shrunk find(s) and summary.json in ${dir.displayOut} (replay one: npm run -s replay -- ${join(dir.displayOut, '<row>-seed<k>.json')})\n`,
    );
  }
  return entries.every((e) => e.detected) ? 0 : 1;
}

process.exitCode = await main();
