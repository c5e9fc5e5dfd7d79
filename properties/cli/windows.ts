/**
 * npm run windows [-- --json] [--runs N] [--seed S] [--base v4|v4-fixed] [--flag ID ...]
 *
 * For each catalog row (or each --flag), its schedule window (properties/window.ts): of N uniform
 * and N PCT schedules (default 1000 each, from seed S, default 1), put on the row's witness, how
 * many make the row's differential hold, and so how many runs a search that drew only the
 * witness's round would wait for it. A row without a witness in this model shows `-`.
 * Same arguments, same output. Exit 0, or 2 on bad arguments (one line on stderr, nothing else).
 */
import { BASES, type Base, catalogRows } from '../catalog.ts';
import { type Hits, type RowWindow, runsPerHit, scheduleWindow } from '../window.ts';
import { exitUsage, intArg, parseCli, UsageError } from './args.ts';
import { fmtTable } from './table.ts';

const fail: (msg: string) => never = (msg) => exitUsage('windows', msg);

function main(): number {
  const { values } = parseCli('windows', {
    options: {
      json: { type: 'boolean' },
      runs: { type: 'string' },
      seed: { type: 'string' },
      base: { type: 'string' },
      flag: { type: 'string', multiple: true },
    },
  });
  let runs: number;
  let seed: number;
  try {
    runs = intArg('runs', values.runs, 1) ?? 1000;
    seed = intArg('seed', values.seed, 0, 2 ** 31 - 1) ?? 1;
  } catch (e) {
    if (e instanceof UsageError) fail(e.message);
    throw e;
  }
  const given = values.base ?? 'v4';
  if (!(BASES as readonly string[]).includes(given))
    fail(`unknown --base '${given}' (known: ${BASES.join(', ')})`);
  const base = given as Base;
  const rows = catalogRows();
  const ids = values.flag ?? rows;
  for (const id of ids) if (!rows.includes(id)) fail(`unknown row '${id}' (known: ${rows.join(', ')})`);

  const entries = ids.map((id) => {
    const w = scheduleWindow(id, base, runs, seed);
    return { id, window: w, runsPerHit: w === null ? null : runsPerHit(w) };
  });
  if (values.json) {
    const json = entries.map(({ id, window: w, runsPerHit: r }) => ({
      id,
      uniform: w?.uniform ?? null,
      pct: w?.pct ?? null,
      runsPerHit: r,
    }));
    process.stdout.write(`${JSON.stringify({ base, runs, seed, entries: json })}\n`);
    return 0;
  }
  const frac = (h: Hits | undefined) => (h === undefined ? '-' : `${h.hits}/${h.runs}`);
  const per = (w: RowWindow | null, r: number | null): string => {
    if (w === null) return '-';
    if (r === null) return `none in ${w.uniform.runs + w.pct.runs}`;
    return r < 10 ? r.toFixed(1) : String(Math.round(r));
  };
  process.stdout.write(
    fmtTable(
      ['row', 'uniform', 'pct', 'runs per hit'],
      entries.map(({ id, window: w, runsPerHit: r }) => [id, frac(w?.uniform), frac(w?.pct), per(w, r)]),
    ),
  );
  process.stdout.write(
    `\n${runs} uniform and ${runs} PCT schedules per row on its witness's own round, seed ${seed}, base ${base}\n`,
  );
  return 0;
}

process.exitCode = main();
