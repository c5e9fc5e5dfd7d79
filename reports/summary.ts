/**
 * summary.json: what one fuzz job (one variant, seed and shard) did and found. Schema-versioned;
 * everything but `timing` is repeatable for a given variant, seed, shard and `--runs` budget
 * (and harness revision), whatever the number of workers.
 */
import { z } from 'zod';

export const SUMMARY_SCHEMA = 'atc-harness/fuzz-summary/v1';

const size = z.object({ ops: z.number(), rounds: z.number(), choices: z.number() });

export const summaryViolation = z.object({
  /** `<variant>-<property>-<short hash of the scenario>`: the counterexample's id. */
  id: z.string(),
  /** The property reported: the one violated, or `harness-nondeterminism`. */
  property: z.string(),
  kind: z.enum(['safety', 'conformance', 'harness']),
  message: z.string(),
  /** Kinds of operation per round (see properties/engine/shape.ts); with the property, the dedup key. */
  shape: z.string(),
  /** The violation's folder, relative to the summary. */
  dir: z.string(),
  /** Stream position of the violating scenario in this shard's stream. */
  index: z.number(),
  runsToDetect: z.number(),
  original: size,
  shrunk: size,
  /** False when the shrink was cut short (interrupt, crash): a counterexample, maybe not minimal. */
  shrinkComplete: z.boolean(),
  /** Shrunk violating runs that came out as this property + shape. */
  seen: z.number(),
  /** The corpus file with the same property + shape, or null: a new finding. */
  inCorpus: z.string().nullable(),
});

const coverageCount = z.object({
  visited: z.number(),
  total: z.number(),
  /** Visited key → stream position of the first run that visited it. */
  first: z.record(z.string(), z.number()),
  /** The blind spots: keys of the universe never visited. */
  never: z.array(z.string()),
});

/**
 * Protocol coverage of the runs counted (properties/coverage.ts): op tuples `op device
 * quarantine queue` and model transitions `step from->to`. Optional: summaries written before it
 * existed, or by a job that did not record it, are still v1.
 */
export const summaryCoverage = z.object({ ops: coverageCount, transitions: coverageCount });

export const summarySchema = z.object({
  schema: z.literal(SUMMARY_SCHEMA),
  /** running: written as the job goes (a killed job leaves this); done; interrupted; aborted (too many crashes). */
  status: z.enum(['running', 'done', 'interrupted', 'aborted']),
  harness: z.object({ revision: z.string() }),
  variant: z.string(),
  strategy: z.string(),
  seeds: z.object({ job: z.number(), stream: z.number() }),
  shard: z.object({ index: z.number(), count: z.number() }),
  budget: z.object({
    runs: z.number().nullable(),
    timeSeconds: z.number().nullable(),
    shrinkTimeSeconds: z.number(),
  }),
  keepGoing: z.boolean(),
  /** budget: the budget ran out; violation: stopped at the first; interrupted; aborted; null while running. */
  end: z.enum(['budget', 'violation', 'interrupted', 'aborted']).nullable(),
  counts: z.object({
    runs: z.number(),
    steps: z.number(),
    violatingRuns: z.number(),
    byProperty: z.record(z.string(), z.number()),
    violations: z.number(),
    newViolations: z.number(),
    crashes: z.number(),
  }),
  violations: z.array(summaryViolation),
  crashes: z.array(z.object({ job: z.string(), error: z.string(), runsLost: z.number() })),
  /** The command that repeats the search. */
  rerun: z.string(),
  /** How the run went on this machine: differs between repeats. */
  timing: z.object({
    startedAt: z.string(),
    updatedAt: z.string(),
    workers: z.number(),
    elapsedMs: z.number(),
    shrinkMs: z.number(),
    executedRuns: z.number(),
    runsPerSecond: z.number(),
    interruptedBy: z.string().nullable(),
  }),
  coverage: summaryCoverage.optional(),
});

export type Summary = z.infer<typeof summarySchema>;
export type SummaryViolation = z.infer<typeof summaryViolation>;
export type SummaryCoverage = z.infer<typeof summaryCoverage>;

export class SummaryError extends Error {}

export function parseSummary(text: string, where: string): Summary {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new SummaryError(`${where}: not JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  const r = summarySchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new SummaryError(`${where}: ${issue.path.join('.') || '(top level)'}: ${issue.message}`);
  }
  return r.data;
}
