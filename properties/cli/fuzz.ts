/**
 * npm run fuzz -- --variant NAME (--runs N | --time SECONDS) --seed S [--json]
 *
 * Runs random scenarios until the first violation or the budget, shrinks it and prints the
 * violated property and the shrunk run's diagram. Exit 1 on a violation, 0 on none, 2 on bad
 * input. With no arguments: the v4 preset for 60 seconds with a fresh seed, printed first.
 */
import { parseArgs } from 'node:util';
import { listVariants, Variant, VariantError } from '../../impl/variants.ts';
import { fmtScenario, fmtTimeline } from '../../reports/counterexample.ts';
import { fuzz } from '../fuzz.ts';
import { runScenario } from '../runner.ts';

class UsageError extends Error {}

function fail(msg: string): never {
  process.stderr.write(`fuzz: ${msg}\n`);
  process.exit(2);
}

function intArg(name: string, v: string | undefined, min: number): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < min)
    throw new UsageError(`--${name} takes a whole number >= ${min}, not '${v}'`);
  return Number(v);
}

function main(): number {
  let args: ReturnType<typeof parse>;
  try {
    args = parse();
  } catch (e) {
    fail(e instanceof Error ? e.message.split('\n')[0]! : String(e));
  }
  if (args.values['list-variants']) {
    for (const v of listVariants()) process.stdout.write(`${v}\n`);
    return 0;
  }
  let variant: Variant;
  let runs: number | undefined;
  let time: number | undefined;
  let seed: number | undefined;
  try {
    variant = Variant.parse(args.values.variant ?? 'v4');
    runs = intArg('runs', args.values.runs, 1);
    time = intArg('time', args.values.time, 1);
    seed = intArg('seed', args.values.seed, 0);
    if (runs !== undefined && time !== undefined) throw new UsageError('give --runs or --time, not both');
  } catch (e) {
    if (e instanceof VariantError || e instanceof UsageError) fail(e.message);
    throw e;
  }
  if (runs === undefined && time === undefined) time = 60;
  // A fresh seed only when none is given; it is printed first so the run can be repeated.
  const freshSeed = seed === undefined;
  const theSeed = seed ?? (Date.now() ^ (process.pid << 16)) >>> 0;
  const json = args.values.json ?? false;
  const budget = runs !== undefined ? `--runs ${runs}` : `--time ${time}`;
  const rerun = `npm run fuzz -- --variant ${variant.name} --seed ${theSeed} ${budget}`;
  const say = (s: string) => {
    if (!json) process.stdout.write(`${s}\n`);
  };
  say(
    `atc-harness fuzz: variant ${variant.name}, seed ${theSeed}${freshSeed ? ' (fresh)' : ''}, budget ${budget}`,
  );

  const result = fuzz({ variant, seed: theSeed, runs, timeMs: time !== undefined ? time * 1000 : undefined });
  const v = result.violation;
  if (json) {
    process.stdout.write(
      `${JSON.stringify({
        variant: result.variant,
        seed: result.seed,
        runs: result.runs,
        steps: result.steps,
        elapsedMs: result.elapsedMs,
        violation:
          v === null
            ? null
            : {
                property: v.property,
                message: v.message,
                scenario: v.scenario,
                choices: v.choices,
                runsToDetect: v.runsToDetect,
                shrunk: v.shrunk,
                original: v.original,
              },
      })}\n`,
    );
    return v === null ? 0 : 1;
  }
  if (v === null) {
    say(`no violation in ${result.runs} scenarios (${result.steps} simulated steps)`);
    return 0;
  }
  const run = runScenario(v.scenario, variant, { trace: true });
  say(`VIOLATION of ${v.property} after ${v.runsToDetect} scenarios (${result.steps} simulated steps)`);
  say(`  ${v.message}`);
  say(
    `shrunk to ${v.shrunk.ops} operation(s) in ${v.shrunk.rounds} round(s) and ${v.shrunk.choices} choice(s), from ${v.original.ops} in ${v.original.rounds} and ${v.original.choices}`,
  );
  say('');
  say(fmtScenario(v.scenario));
  const others = run.violations.filter((x) => x.property !== v.property);
  if (others.length > 0) {
    say('also violated in this run:');
    for (const o of others) say(`  ${o.property}: ${o.message}`);
  }
  say('');
  say('timeline (one column per CPU, interrupt context and hardware agent; ! = kernel log):');
  say(fmtTimeline(run));
  say('');
  say(`re-run: ${rerun}`);
  say(`counterexample (JSON): ${JSON.stringify(v.scenario)}`);
  return 1;
}

function parse() {
  return parseArgs({
    args: process.argv.slice(2),
    strict: true,
    allowPositionals: false,
    options: {
      variant: { type: 'string' },
      runs: { type: 'string' },
      time: { type: 'string' },
      seed: { type: 'string' },
      json: { type: 'boolean' },
      'list-variants': { type: 'boolean' },
    },
  });
}

process.exitCode = main();
