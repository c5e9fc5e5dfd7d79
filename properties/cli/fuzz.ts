/**
 * npm run fuzz -- --variant NAME (--runs N | --time SECONDS) [--seed S] [--workers N]
 *                 [--shard i/N] [--strategy uniform|pct|both] [--keep-going] [--out DIR] [--save-corpus]
 *                 [--corpus DIR] [--shrink-time SECONDS] [--json] [--coverage]
 *
 * Runs random scenarios until the first violation (or, with --keep-going, until the budget),
 * shrinks what it finds, replays it once, prints the violated property and the shrunk run's
 * diagram, and writes a report folder (summary.json, junit.xml, one folder per violation).
 * Exit 1 on a violation, 0 on none, 2 on bad input (one line on stderr, no file written), 3 when
 * a worker crashed and nothing was found, 130/143 when interrupted (SIGINT/SIGTERM) before
 * anything was found. The search's protocol coverage (properties/coverage.ts) goes into the
 * summary and one line of output; --coverage also prints its blind spots. With no arguments: the v4 preset for 60 seconds with a fresh seed, printed
 * first, on all cores.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { listFixVariants, listVariants, Variant, VariantError } from '../../impl/variants.ts';
import { fmtScenario, fmtTimeline } from '../../reports/counterexample.ts';
import { RunReport } from '../../reports/run-report.ts';
import type { Summary, SummaryCoverage } from '../../reports/summary.ts';
import { type Coverage, fmtBlindSpots, fmtCoverageLine } from '../coverage.ts';
import { CORPUS_DIR, readCorpus, type SaveResult, saveToCorpus } from '../engine/corpus.ts';
import { Engine, type EngineState, type Reported } from '../engine/engine.ts';
import { Control } from '../engine/jobs.ts';
import { type Executor, InProcess, WorkerPool } from '../engine/pool.ts';
import { parseShard, type Shard, ShardError, shardSeed, WHOLE } from '../engine/seeds.ts';
import { exitUsage, intArg, MAX_WORKERS, UsageError, parseCli } from './args.ts';
import { outDir } from './out-dir.ts';
import { Progress } from './progress.ts';
import { STRATEGIES, type Strategy } from '../scenario.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SUMMARY_EVERY_MS = 10_000;
const SECOND_SIGNAL_MS = 1000;

const fail: (msg: string) => never = (msg) => exitUsage('fuzz', msg);

interface Args {
  readonly variant: Variant;
  readonly runs?: number;
  readonly time?: number;
  readonly seed: number;
  readonly freshSeed: boolean;
  readonly workers: number;
  readonly shard: Shard;
  readonly keepGoing: boolean;
  readonly strategy: Strategy;
  readonly saveCorpus: boolean;
  /** The corpus folder (absolute): what is known, and where --save-corpus adds. */
  readonly corpus: string;
  readonly shrinkTime: number;
  readonly json: boolean;
  /** Print the coverage's blind spots (the counts are always printed). */
  readonly coverage: boolean;
  /** Absolute; and as the user gave it (or relative to the working directory). */
  readonly out: string;
  readonly displayOut: string;
}

function parse() {
  return parseCli('fuzz', {
    allowPositionals: false,
    options: {
      variant: { type: 'string' },
      runs: { type: 'string' },
      time: { type: 'string' },
      seed: { type: 'string' },
      workers: { type: 'string' },
      shard: { type: 'string' },
      strategy: { type: 'string' },
      out: { type: 'string' },
      'keep-going': { type: 'boolean' },
      'save-corpus': { type: 'boolean' },
      corpus: { type: 'string' },
      'shrink-time': { type: 'string' },
      json: { type: 'boolean' },
      coverage: { type: 'boolean' },
      'list-variants': { type: 'boolean' },
    },
  });
}

/** Every argument checked, nothing written: a UsageError (or VariantError, ShardError) otherwise. */
function validate(values: ReturnType<typeof parse>['values']): Args {
  const variant = Variant.parse(values.variant ?? 'v4');
  const runs = intArg('runs', values.runs, 1);
  let time = intArg('time', values.time, 1);
  const given = intArg('seed', values.seed, 0, 0xffffffff);
  const workers =
    intArg('workers', values.workers, 1, MAX_WORKERS) ?? Math.min(MAX_WORKERS, availableParallelism());
  const shard = values.shard === undefined ? WHOLE : parseShard(values.shard);
  const shrinkTime = intArg('shrink-time', values['shrink-time'], 1) ?? 60;
  if (runs !== undefined && time !== undefined) throw new UsageError('give --runs or --time, not both');
  const strategy = values.strategy ?? 'uniform';
  if (!STRATEGIES.includes(strategy as Strategy)) {
    throw new UsageError(`unknown --strategy '${strategy}' (known: ${STRATEGIES.join(', ')})`);
  }
  if (runs === undefined && time === undefined) time = 60;
  // A fresh seed only when none is given; it is printed first so the run can be repeated.
  const seed = given ?? (Date.now() ^ (process.pid << 16)) >>> 0;
  let corpusDir = CORPUS_DIR;
  if (values.corpus !== undefined) {
    corpusDir = resolve(values.corpus);
    if (!existsSync(corpusDir) || !statSync(corpusDir).isDirectory())
      throw new UsageError(`--corpus ${values.corpus} is not a folder`);
  }
  const { out, displayOut } = outDir(
    values.out,
    `${variant.name}-${seed}${shard.count > 1 ? `-shard-${shard.index}-of-${shard.count}` : ''}`,
  );
  return {
    variant,
    runs,
    time,
    seed,
    freshSeed: given === undefined,
    workers,
    shard,
    keepGoing: values['keep-going'] ?? false,
    strategy: strategy as Strategy,
    saveCorpus: values['save-corpus'] ?? false,
    corpus: corpusDir,
    shrinkTime,
    json: values.json ?? false,
    coverage: values.coverage ?? false,
    out,
    displayOut,
  };
}

function gitRevision(): string {
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 5000,
    }).trim();
  } catch {
    return 'unknown';
  }
}

/** summary.json's coverage section: counts, first visits and blind spots. */
function coverageSection(c: Coverage): SummaryCoverage {
  const r = c.report();
  const j = c.toJSON();
  return {
    ops: { visited: r.ops.visited, total: r.ops.total, first: { ...j.ops }, never: [...r.ops.never] },
    transitions: {
      visited: r.transitions.visited,
      total: r.transitions.total,
      first: { ...j.transitions },
      never: [...r.transitions.never],
    },
  };
}

/** The report folder, with the search's coverage in summary.json. */
class CoverageRunReport extends RunReport {
  override summary(state: EngineState, status: Summary['status'], now?: Date): Summary {
    const s = super.summary(state, status, now);
    return state.coverage !== undefined ? { ...s, coverage: coverageSection(state.coverage) } : s;
  }
}

function legacyViolation(v: Reported) {
  return {
    property: v.property,
    message: v.message,
    scenario: v.scenario,
    choices: v.scenario.choices,
    runsToDetect: v.runsToDetect,
    shrunk: size(v.scenario),
    original: size(v.original),
  };
}

function size(s: Reported['scenario']) {
  return {
    ops: s.rounds.reduce((n, r) => n + r.length, 0),
    rounds: s.rounds.length,
    choices: s.choices.length,
  };
}

async function main(): Promise<number> {
  let args: Args;
  const values = parse().values;
  if (values['list-variants']) {
    // Then the fixes of v4's own findings (impl/variants.ts FIXES), which combine with flags.
    for (const v of [...listVariants(), ...listFixVariants()]) process.stdout.write(`${v}\n`);
    return 0;
  }
  try {
    args = validate(values);
  } catch (e) {
    if (e instanceof VariantError || e instanceof UsageError || e instanceof ShardError) fail(e.message);
    throw e;
  }
  // Arguments are valid: only now is anything written.
  try {
    mkdirSync(args.out, { recursive: true });
  } catch (e) {
    fail(`cannot create ${args.displayOut}: ${e instanceof Error ? e.message : String(e)}`);
  }

  const { variant, shard, json } = args;
  const budget = args.runs !== undefined ? `--runs ${args.runs}` : `--time ${args.time}`;
  const shardArg = shard.count > 1 ? ` --shard ${shard.index}/${shard.count}` : '';
  const keepArg = args.keepGoing ? ' --keep-going' : '';
  const rerun = `npm run fuzz -- --variant ${variant.name} --seed ${args.seed}${shardArg} ${budget}${keepArg}`;
  const say = (s: string) => {
    if (!json) process.stdout.write(`${s}\n`);
  };
  let progress: Progress | null = null;
  const note = (s: string) => {
    if (json) return;
    if (progress !== null) progress.say(s);
    else process.stderr.write(`${s}\n`);
  };
  const streamSeed = shardSeed(args.seed, shard);
  say(
    `atc-harness fuzz: variant ${variant.name}, seed ${args.seed}${args.freshSeed ? ' (fresh)' : ''}${shard.count > 1 ? `, shard ${shard.index}/${shard.count} (stream seed ${streamSeed})` : ''}, budget ${budget}${args.keepGoing ? ', keep going' : ''}`,
  );
  note(
    `fuzz: ${args.workers === 1 ? 'in-process (1 worker)' : `${args.workers} worker threads`}; report in ${args.displayOut}`,
  );

  const ctl = Control.create();
  const executor: Executor = args.workers === 1 ? new InProcess(ctl) : new WorkerPool(args.workers, ctl);
  const report = new CoverageRunReport({
    dir: args.out,
    displayDir: args.displayOut,
    variant: variant.name,
    strategy: args.strategy,
    seed: args.seed,
    streamSeed,
    shard,
    runs: args.runs ?? null,
    timeSeconds: args.time ?? null,
    shrinkTimeSeconds: args.shrinkTime,
    keepGoing: args.keepGoing,
    workers: args.workers,
    revision: gitRevision(),
    rerun,
    startedAt: new Date(),
    corpus: readCorpus(args.corpus),
  });
  let engine: Engine | null = null;
  const writeRunning = () => {
    if (engine !== null) report.write(engine.state(), 'running');
  };
  engine = new Engine(
    {
      variant,
      seed: args.seed,
      shard,
      runs: args.runs,
      timeMs: args.time !== undefined ? args.time * 1000 : undefined,
      keepGoing: args.keepGoing,
      shrinkTimeMs: args.shrinkTime * 1000,
      strategy: args.strategy,
      coverage: true,
    },
    executor,
    ctl,
    {
      onViolation: (v) => {
        report.addViolation(v);
        writeRunning();
      },
      onCrash: (c) => {
        note(`fuzz: a worker crashed (${c.job}): ${c.error.split('\n')[0]}`);
        writeRunning();
      },
    },
  );
  const eng = engine;
  writeRunning();

  let signalled: NodeJS.Signals | null = null;
  const finalStatus = (s: EngineState): Summary['status'] =>
    s.end === 'interrupted' || signalled !== null ? 'interrupted' : s.end === 'aborted' ? 'aborted' : 'done';
  const exitCode = (s: EngineState): number =>
    s.violations.length > 0
      ? 1
      : signalled !== null
        ? signalled === 'SIGINT'
          ? 130
          : 143
        : s.crashes.length > 0
          ? 3
          : 0;
  let signalledAt = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    // One Ctrl-C reaches this process twice (from the terminal, and relayed by tsx or npm):
    // a second signal counts only when it comes a moment later.
    if (signalled !== null && Date.now() - signalledAt < SECOND_SIGNAL_MS) return;
    if (signalled === null) {
      signalled = sig;
      signalledAt = Date.now();
      note(`fuzz: ${sig}: stopping; what was found is being written (again to stop at once)`);
      eng.interrupt(sig);
      return;
    }
    // A second signal: write what there is and go.
    const s = eng.state();
    report.write(s, 'interrupted');
    process.exit(exitCode(s));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  progress = new Progress(
    process.stderr,
    json ? 'off' : process.stderr.isTTY ? 'bar' : 'lines',
    { runs: args.runs, timeMs: args.time !== undefined ? args.time * 1000 : undefined },
    () => {
      const s = eng.state();
      return {
        runs: s.executedRuns,
        violatingRuns: s.violatingRuns,
        violations: s.violations.length,
        elapsedMs: s.elapsedMs,
        stopping: signalled !== null || !s.searching,
      };
    },
  );
  progress.start();
  const periodic = setInterval(writeRunning, SUMMARY_EVERY_MS);
  periodic.unref();

  const state = await eng.run();
  clearInterval(periodic);
  progress.stop();
  const summary = report.write(state, finalStatus(state));

  const saved: SaveResult[] = [];
  const corpusShown = relative(process.cwd(), args.corpus) || '.';
  if (args.saveCorpus) {
    for (const v of state.violations) {
      if (v.property === 'harness-nondeterminism') continue;
      saved.push(await saveToCorpus(variant.name, v.property, v.scenario, args.corpus));
    }
  }
  const code = exitCode(state);

  if (json) {
    const first = state.violations[0];
    process.stdout.write(
      `${JSON.stringify({
        variant: variant.name,
        seed: args.seed,
        runs: state.runs,
        steps: state.steps,
        elapsedMs: state.elapsedMs,
        violation: first === undefined ? null : legacyViolation(first),
        shard: `${shard.index}/${shard.count}`,
        keepGoing: args.keepGoing,
        status: summary.status,
        end: summary.end,
        out: args.displayOut,
        violations: state.violations.map((v, i) => ({
          ...legacyViolation(v),
          id: summary.violations[i]?.id,
          shape: v.shape,
          dir: summary.violations[i]?.dir,
          inCorpus: summary.violations[i]?.inCorpus ?? null,
        })),
        crashes: summary.crashes,
        corpus: saved,
        coverage: summary.coverage ?? null,
      })}\n`,
    );
    return code;
  }

  if (signalled !== null) say(`interrupted by ${signalled} after ${state.executedRuns} scenarios`);
  for (const c of state.crashes)
    say(`worker crash in ${c.job} (${c.runsLost} runs lost): ${c.error.split('\n')[0]}`);
  if (state.violations.length === 0) {
    say(`no violation in ${state.runs} scenarios (${state.steps} simulated steps)`);
  } else if (!args.keepGoing) {
    printViolation(say, state.violations[0]!, `VIOLATION of ${state.violations[0]!.property}`, state.steps);
    say('');
    say(`re-run: ${rerun}`);
    say(`counterexample (JSON): ${JSON.stringify(state.violations[0]!.scenario)}`);
  } else {
    const props = Object.entries(state.byProperty)
      .map(([p, n]) => `${p} ${n}`)
      .join(', ');
    say(
      `found ${state.violations.length} distinct violation(s) in ${state.runs} scenarios (${state.steps} simulated steps); violating runs: ${props}`,
    );
    state.violations.forEach((v, i) => {
      say('');
      printViolation(say, v, `VIOLATION ${i + 1} of ${state.violations.length}: ${v.property}`, null);
      say(`counterexample (JSON): ${JSON.stringify(v.scenario)}`);
    });
    say('');
    say(`re-run: ${rerun}`);
  }
  if (state.coverage !== undefined) {
    const r = state.coverage.report();
    say(`coverage: ${fmtCoverageLine(r)}${args.coverage ? '' : ' (--coverage lists the blind spots)'}`);
    if (args.coverage) for (const line of fmtBlindSpots(r)) say(line);
  }
  for (const s of saved)
    say(
      s.status === 'added'
        ? `corpus: added ${join(corpusShown, s.file)}`
        : `corpus: already has this property + shape (${s.file})`,
    );
  note(`report: ${args.displayOut}/summary.json`);
  return code;
}

function printViolation(say: (s: string) => void, v: Reported, head: string, steps: number | null): void {
  say(
    steps !== null
      ? `${head} after ${v.runsToDetect} scenarios (${steps} simulated steps)`
      : `${head}, first after ${v.runsToDetect} scenarios (shape: ${v.shape})`,
  );
  say(`  ${v.message}`);
  const s = size(v.scenario);
  const o = size(v.original);
  say(
    `shrunk to ${s.ops} operation(s) in ${s.rounds} round(s) and ${s.choices} choice(s), from ${o.ops} in ${o.rounds} and ${o.choices}`,
  );
  say('');
  say(fmtScenario(v.scenario));
  const others = v.replay.violations.filter((x) => x.property !== v.property);
  if (others.length > 0) {
    say('also violated in this run:');
    for (const o2 of others) say(`  ${o2.property}: ${o2.message}`);
  }
  say('');
  say('timeline (one column per CPU, interrupt context and hardware agent; ! = kernel log):');
  say(fmtTimeline(v.replay));
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(
      `fuzz: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`,
    );
    process.exitCode = 3;
  },
);
