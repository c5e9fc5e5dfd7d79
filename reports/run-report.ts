/**
 * The report folder of one fuzz job, written as the job goes (every file atomically):
 *
 *   summary.json                  the job (see summary.ts); rewritten on every new violation,
 *                                 every few seconds while running, and at the end
 *   junit.xml                     for CI systems (see junit.ts)
 *   violations/<property>-<hash>/ one per reported violation (property + shape):
 *     counterexample.json         {id, variant, property, scenario}: `npm run replay -- FILE`
 *     timeline.txt                the counterexample for a reader of the kernel code (80 columns)
 *     timeline.md                 the same with a Mermaid sequence diagram
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type CorpusEntry, corpusMatch, counterexampleJson } from '../properties/engine/corpus.ts';
import { type EngineState, NONDETERMINISM, type Reported } from '../properties/engine/engine.ts';
import type { Shard } from '../properties/engine/seeds.ts';
import { counterexampleId, fileSafe, shortHash } from '../properties/engine/shape.ts';
import { isSafety } from '../properties/invariants.ts';
import { scenarioSize } from '../properties/scenario.ts';
import { writeFileAtomic } from './atomic.ts';
import { fmtCounterexampleText, fmtScenario } from './counterexample.ts';
import { renderJunit } from './junit.ts';
import { renderMermaid } from './mermaid.ts';
import { SUMMARY_SCHEMA, type Summary, type SummaryViolation } from './summary.ts';

export interface ReportContext {
  /** The folder (created by the caller). */
  readonly dir: string;
  /** The folder as the user named it (for commands printed in the report). */
  readonly displayDir: string;
  readonly variant: string;
  readonly strategy: string;
  readonly seed: number;
  readonly streamSeed: number;
  readonly shard: Shard;
  readonly runs: number | null;
  readonly timeSeconds: number | null;
  readonly shrinkTimeSeconds: number;
  readonly keepGoing: boolean;
  readonly workers: number;
  readonly revision: string;
  readonly rerun: string;
  readonly startedAt: Date;
  readonly corpus: readonly CorpusEntry[];
}

interface Written {
  readonly entry: SummaryViolation;
  readonly timeline: string;
}

export class RunReport {
  private readonly written = new Map<string, Written>();

  constructor(private readonly ctx: ReportContext) {}

  /** Writes (or rewrites, for an earlier one of the same key) a violation's folder. */
  addViolation(v: Reported): SummaryViolation {
    const c = this.ctx;
    // The file records the property the search saw: replaying a nondeterminism report shows it.
    const fileProperty = v.property === NONDETERMINISM ? v.searchProperty : v.property;
    const id = counterexampleId(c.variant, fileProperty, v.scenario);
    const rel = `violations/${fileSafe(`${v.property}-${shortHash(v.shape)}`)}`;
    const dir = join(c.dir, rel);
    mkdirSync(dir, { recursive: true });
    const cePath = `${c.displayDir}/${rel}/counterexample.json`;
    const shard = c.shard.count > 1 ? `, shard ${c.shard.index}/${c.shard.count}` : '';
    const text = fmtCounterexampleText({
      id,
      variant: c.variant,
      property: v.property,
      message: v.message,
      scenario: v.scenario,
      run: v.replay,
      found: `random scenario ${v.index + 1} of the search with seed ${c.seed}${shard}, shrunk${v.shrinkComplete ? '' : ' (cut short)'}, then replayed once before this report`,
      shrunk: scenarioSize(v.scenario),
      original: scenarioSize(v.original),
      replay: `npm run replay -- ${cePath}`,
    });
    writeFileAtomic(
      join(dir, 'counterexample.json'),
      counterexampleJson(c.variant, fileProperty, v.scenario),
    );
    writeFileAtomic(join(dir, 'timeline.txt'), text);
    writeFileAtomic(join(dir, 'timeline.md'), this.markdown(id, v, cePath));
    const match = corpusMatch(c.corpus, v.property, v.shape);
    const entry: SummaryViolation = {
      id,
      property: v.property,
      kind: v.property === NONDETERMINISM ? 'harness' : isSafety(v.property) ? 'safety' : 'conformance',
      message: v.message,
      shape: v.shape,
      dir: rel,
      index: v.index,
      runsToDetect: v.runsToDetect,
      original: scenarioSize(v.original),
      shrunk: scenarioSize(v.scenario),
      shrinkComplete: v.shrinkComplete,
      seen: v.seen,
      inCorpus: match?.file ?? null,
    };
    this.written.set(v.key, { entry, timeline: text });
    return entry;
  }

  private markdown(id: string, v: Reported, cePath: string): string {
    return [
      `# ${id}`,
      '',
      `**${v.property}** violated on \`${this.ctx.variant}\`: ${v.message}`,
      '',
      '## Setup',
      '',
      '```',
      fmtScenario(v.scenario),
      '```',
      '',
      '## Interleaving',
      '',
      'One participant per CPU (task context), per CPU interrupt context and for the hardware;',
      'notes across all are virtual time advancing, notes over one participant its kernel log.',
      '',
      '```mermaid',
      renderMermaid(
        v.replay.trace.filter((t) => t.step > (v.replay.roundStarts[0] ?? 0)),
        v.replay.log.filter((l) => l.step > (v.replay.roundStarts[0] ?? 0)),
      ),
      '```',
      '',
      `Replay: \`npm run replay -- ${cePath}\``,
      '',
    ].join('\n');
  }

  summary(state: EngineState, status: Summary['status'], now = new Date()): Summary {
    const c = this.ctx;
    const byKey = new Map(state.violations.map((v) => [v.key, v]));
    const violations = [...this.written.entries()]
      .filter(([key]) => byKey.has(key))
      .map(([key, w]) => ({ ...w.entry, seen: byKey.get(key)!.seen }))
      .sort((a, b) => a.index - b.index);
    const elapsed = Math.max(1, state.elapsedMs);
    return {
      schema: SUMMARY_SCHEMA,
      status,
      harness: { revision: c.revision },
      variant: c.variant,
      strategy: c.strategy,
      seeds: { job: c.seed, stream: c.streamSeed },
      shard: { index: c.shard.index, count: c.shard.count },
      budget: { runs: c.runs, timeSeconds: c.timeSeconds, shrinkTimeSeconds: c.shrinkTimeSeconds },
      keepGoing: c.keepGoing,
      end: state.end,
      counts: {
        runs: state.runs,
        steps: state.steps,
        violatingRuns: state.violatingRuns,
        byProperty: { ...state.byProperty },
        violations: violations.length,
        newViolations: violations.filter((v) => v.inCorpus === null).length,
        crashes: state.crashes.length,
      },
      violations,
      crashes: state.crashes.map((x) => ({ ...x })),
      rerun: c.rerun,
      timing: {
        startedAt: c.startedAt.toISOString(),
        updatedAt: now.toISOString(),
        workers: c.workers,
        elapsedMs: state.elapsedMs,
        shrinkMs: state.shrinkMs,
        executedRuns: state.executedRuns,
        runsPerSecond: Math.round((state.executedRuns * 1000) / elapsed),
        interruptedBy: state.interruptedBy,
      },
    };
  }

  /** Writes summary.json and junit.xml; returns the summary. */
  write(state: EngineState, status: Summary['status']): Summary {
    const s = this.summary(state, status);
    const timelines = new Map([...this.written.values()].map((w) => [w.entry.id, w.timeline]));
    writeFileAtomic(join(this.ctx.dir, 'summary.json'), `${JSON.stringify(s, null, 2)}\n`);
    writeFileAtomic(join(this.ctx.dir, 'junit.xml'), renderJunit(s, timelines));
    return s;
  }
}
