/**
 * npm run tradeoffs [-- --runs N] [--seed S] [--json]
 *
 * Runs the same N random scenarios (the generic scenario arbitrary, sampled from seed S) under
 * `v4` and under `v4-minimal` and prints, side by side, what each design gives up: false and
 * true fences, missed hung devices, ATC timeouts per hang episode, ATS re-enabled for a hung
 * device, core quarantines, and the properties violated (properties/tradeoffs.ts).
 * `--json` prints the report as JSON instead of the table. Exit 0, or 2 on bad arguments.
 */
import { renderTable, tradeoffs } from '../tradeoffs.ts';
import { exitUsage, intArg, parseCli, UsageError } from './args.ts';

const fail: (msg: string) => never = (msg) => exitUsage('tradeoffs', msg);

function main(): number {
  const { values } = parseCli('tradeoffs', {
    options: {
      runs: { type: 'string' },
      seed: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  let runs: number;
  let seed: number;
  try {
    runs = intArg('runs', values.runs, 1, 1_000_000) ?? 3000;
    seed = intArg('seed', values.seed, 0, 0x7fffffff) ?? 1;
  } catch (e) {
    if (e instanceof UsageError) fail(e.message);
    throw e;
  }
  const t0 = performance.now();
  const report = tradeoffs({ runs, seed });
  const secs = ((performance.now() - t0) / 1000).toFixed(1);
  if (values.json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return 0;
  }
  process.stdout.write(
    `atc-harness tradeoffs: v4 vs v4-minimal, ${runs} scenarios, seed ${seed} (${secs} s)\n\n`,
  );
  process.stdout.write(`${renderTable(report)}\n`);
  return 0;
}

process.exitCode = main();
