/**
 * npm run replay -- PATH [--variant NAME]
 *
 * PATH is a counterexample file (properties/corpus/*.json, a fuzz report's
 * violations/<name>/counterexample.json) or a fuzz report's violation folder.
 * Re-runs a counterexample exactly and prints its timeline. `--variant` runs it on another
 * variant (e.g. to show a fix holds). Exit 1 if a violation (of the recorded property, when the
 * file names one) reproduces, 0 if not, 2 on a malformed or incompatible file or bad arguments.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Variant, VariantError } from '../../impl/variants.ts';
import { fmtScenario, fmtTimeline } from '../../reports/counterexample.ts';
import { CounterexampleError, parseCounterexample } from '../counterexample-file.ts';
import { runScenario } from '../runner.ts';
import { exitUsage, parseCli } from './args.ts';

const fail: (msg: string) => never = (msg) => exitUsage('replay', msg);

function main(): number {
  const { values, positionals } = parseCli('replay', {
    allowPositionals: true,
    options: { variant: { type: 'string' } },
  });
  if (positionals.length !== 1) fail('give exactly one counterexample file: npm run replay -- PATH');
  const given = positionals[0]!;
  // A violation folder of a fuzz report stands for its counterexample.json.
  const path =
    existsSync(given) && statSync(given).isDirectory() ? join(given, 'counterexample.json') : given;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    fail(`cannot read ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
  let file: ReturnType<typeof parseCounterexample>;
  let variant: Variant;
  try {
    file = parseCounterexample(text, path);
    variant = Variant.parse(values.variant ?? file.variant);
  } catch (e) {
    if (e instanceof CounterexampleError || e instanceof VariantError) fail(e.message);
    throw e;
  }
  const run = runScenario(file.scenario, variant, { trace: true });
  const out = (s: string) => process.stdout.write(`${s}\n`);
  out(
    `atc-harness replay: ${path} on ${variant.name}${file.property ? ` (recorded: ${file.property} on ${file.variant})` : ''}`,
  );
  out('');
  out(fmtScenario(file.scenario));
  out('');
  out('timeline (one column per CPU, interrupt context and hardware agent; ! = kernel log):');
  out(fmtTimeline(run));
  out('');
  const relevant = file.property
    ? run.violations.filter((v) => v.property === file.property)
    : run.violations;
  for (const v of run.violations) out(`violated: ${v.property}: ${v.message}`);
  if (relevant.length > 0) {
    out(`reproduces on ${variant.name}`);
    return 1;
  }
  out(
    `does not reproduce on ${variant.name}${run.violations.length > 0 ? ' (other properties were violated: see above)' : ''}`,
  );
  return 0;
}

process.exitCode = main();
