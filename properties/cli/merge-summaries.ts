/**
 * npx tsx properties/cli/merge-summaries.ts [--corpus DIR] PATH...
 *
 * Merges the summary.json files of fuzz jobs (each PATH a summary.json or a folder searched for
 * them, e.g. the downloaded artifacts of the nightly matrix) into one Markdown table on stdout,
 * and judges the lot: exit 1 if some violation's property + shape is not in the corpus (a new
 * finding), or some job did not finish cleanly (still `running`, i.e. killed; `aborted`; a worker
 * crash); 0 otherwise; 2 on bad input (one line on stderr).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { parseSummary, type Summary, SummaryError } from '../../reports/summary.ts';
import { CORPUS_DIR, corpusMatch, readCorpus } from '../engine/corpus.ts';
import { dedupKey } from '../engine/shape.ts';
import { exitUsage, parseCli } from './args.ts';

const fail: (msg: string) => never = (msg) => exitUsage('merge-summaries', msg);

/** summary.json files under `path` (itself, or anywhere below it), sorted. */
function findSummaries(path: string): string[] {
  let st;
  try {
    st = statSync(path);
  } catch {
    fail(`no such file or folder: ${path}`);
  }
  if (st.isFile()) return [path];
  const out: string[] = [];
  const walk = (dir: string, depth: number) => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(dir, e.name);
      if (e.isFile() && e.name === 'summary.json') out.push(p);
      else if (e.isDirectory() && depth < 6 && e.name !== 'node_modules' && e.name !== 'violations')
        walk(p, depth + 1);
    }
  };
  walk(path, 0);
  return out;
}

/** A path relative to the working directory when under it, else absolute. */
const shown = (p: string) => {
  const rel = relative(process.cwd(), p);
  return rel.startsWith('..') || isAbsolute(rel) ? resolve(p) : rel;
};
const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\s+/g, ' ');
const num = (n: number) => n.toLocaleString('en-US');

interface Job {
  readonly file: string;
  readonly s: Summary;
}

/** Per variant, the union of the shards' protocol coverage (jobs that recorded it). */
function mergedCoverage(jobs: readonly Job[]): string[] {
  const byVariant = new Map<
    string,
    { ops: Set<string>; tr: Set<string>; opsTotal: number; trTotal: number; n: number }
  >();
  for (const { s } of jobs) {
    if (s.coverage === undefined) continue;
    const m = byVariant.get(s.variant) ?? { ops: new Set(), tr: new Set(), opsTotal: 0, trTotal: 0, n: 0 };
    for (const k of Object.keys(s.coverage.ops.first)) m.ops.add(k);
    for (const k of Object.keys(s.coverage.transitions.first)) m.tr.add(k);
    m.opsTotal = Math.max(m.opsTotal, s.coverage.ops.total);
    m.trTotal = Math.max(m.trTotal, s.coverage.transitions.total);
    m.n++;
    byVariant.set(s.variant, m);
  }
  return [...byVariant.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(
      ([variant, m]) =>
        `Coverage of ${variant} over ${m.n} job(s): ${m.ops.size}/${m.opsTotal} op tuples, ${m.tr.size}/${m.trTotal} model transitions.`,
    );
}

function mergeTable(
  jobs: readonly Job[],
  corpus: ReturnType<typeof readCorpus>,
  corpusName: string,
): { text: string; failures: string[] } {
  const failures: string[] = [];
  const out: string[] = ['## atc-harness fuzz: merged summaries', ''];
  const sorted = [...jobs].sort(
    (a, b) =>
      a.s.variant.localeCompare(b.s.variant) ||
      a.s.shard.count - b.s.shard.count ||
      a.s.shard.index - b.s.shard.index ||
      a.s.seeds.job - b.s.seeds.job,
  );
  out.push(
    '| variant | shard | seed | status | runs | runs/s | violating runs | violations | new | crashes |',
  );
  out.push('| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  let runs = 0;
  for (const { file, s } of sorted) {
    const fresh = s.violations.filter((v) => corpusMatch(corpus, v.property, v.shape) === null).length;
    runs += s.counts.runs;
    out.push(
      `| ${cell(s.variant)} | ${s.shard.index}/${s.shard.count} | ${s.seeds.job} | ${s.status} | ${num(s.counts.runs)} | ${num(s.timing.runsPerSecond)} | ${num(s.counts.violatingRuns)} | ${s.violations.length} | ${fresh} | ${s.crashes.length} |`,
    );
    if (s.status !== 'done' && s.status !== 'interrupted')
      failures.push(`${file}: the job did not finish (status ${s.status})`);
    for (const c of s.crashes)
      failures.push(`${file}: a worker crashed in ${c.job}: ${c.error.split('\n')[0]}`);
  }
  out.push('');
  out.push(`${sorted.length} job(s), ${num(runs)} scenarios in all.`);
  for (const line of mergedCoverage(sorted)) out.push(line);

  // One row per property + shape, over all jobs.
  const rows = new Map<
    string,
    {
      property: string;
      shape: string;
      where: string[];
      example: string;
      message: string;
      known: string | null;
    }
  >();
  for (const { file, s } of sorted) {
    for (const v of s.violations) {
      const key = dedupKey(v.property, v.shape);
      const where = `${s.variant} ${s.shard.index}/${s.shard.count}`;
      const row = rows.get(key);
      if (row !== undefined) {
        if (!row.where.includes(where)) row.where.push(where);
        continue;
      }
      const known = corpusMatch(corpus, v.property, v.shape)?.file ?? null;
      rows.set(key, {
        property: v.property,
        shape: v.shape,
        where: [where],
        example: join(file, '..', v.dir, 'counterexample.json'),
        message: v.message,
        known,
      });
    }
  }
  out.push('');
  if (rows.size === 0) {
    out.push('No violation.');
  } else {
    out.push('| property | shape | found in (variant shard) | in corpus | example |');
    out.push('| --- | --- | --- | --- | --- |');
    const ordered = [...rows.values()].sort(
      (a, b) => Number(a.known !== null) - Number(b.known !== null) || a.property.localeCompare(b.property),
    );
    for (const r of ordered) {
      out.push(
        `| ${cell(r.property)} | ${cell(r.shape)} | ${cell(r.where.join(', '))} | ${r.known === null ? '**new**' : cell(r.known)} | ${cell(shown(r.example))} |`,
      );
      if (r.known === null)
        failures.push(
          `new: ${r.property} with shape ${r.shape} (${r.where.join(', ')}) is not in ${corpusName}: ${r.message}`,
        );
    }
  }
  out.push('');
  if (failures.length === 0)
    out.push(`Verdict: nothing new (every violation's property + shape is in ${corpusName}).`);
  else {
    out.push(`Verdict: ${failures.length} problem(s):`);
    out.push('');
    for (const f of failures) out.push(`- ${cell(f)}`);
  }
  return { text: `${out.join('\n')}\n`, failures };
}

function main(): number {
  const { values, positionals } = parseCli('merge-summaries', {
    allowPositionals: true,
    options: { corpus: { type: 'string' } },
  });
  if (positionals.length === 0) fail('give the report folders (or summary.json files) to merge');
  const files = positionals.flatMap(findSummaries);
  if (files.length === 0) fail(`no summary.json under ${positionals.join(', ')}`);
  const jobs: Job[] = [];
  for (const file of files) {
    try {
      jobs.push({ file, s: parseSummary(readFileSync(file, 'utf8'), file) });
    } catch (e) {
      if (e instanceof SummaryError) fail(e.message);
      throw e;
    }
  }
  const corpusDir = values.corpus ?? CORPUS_DIR;
  const corpusName = values.corpus ?? 'properties/corpus';
  const { text, failures } = mergeTable(jobs, readCorpus(corpusDir), corpusName);
  process.stdout.write(text);
  return failures.length === 0 ? 0 : 1;
}

process.exitCode = main();
