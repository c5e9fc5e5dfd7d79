/**
 * What each design gives up, measured side by side (CATALOG "Design trade-offs to quantify, not
 * to fail"): the same random scenarios run under `v4` and `v4-minimal`, and each run is read back
 * from the events the simulator emits — never from the variant's code.
 *
 * - A *fence* is a device going from usable to fenced: the driver fenced its ATS (`atsFenced`) or
 *   the core quarantined it as broken (`blocked` to BLOCKED_BROKEN); v4 does both for one
 *   timeout, which counts once. A device blocked for a reset (BLOCKED_RESETTING) is not usable:
 *   a fence then (a core quarantine included) is counted apart, and belongs to the episode the
 *   reset ends or ended. It stays fenced until ATS is turned back on (`eatsEnabled`) or a reset
 *   works (`endpointReset` ok). A fence is *false* when the device has not hung since its last
 *   working reset, *true* when it has.
 * - A *hang episode* runs from a device's hang to its next working reset or the end of the run.
 *   Its ATC timeouts are the distinct failing CMD_SYNCs (`syncAtcError` positions) naming the
 *   device; its *re-enables* are the times ATS came back on for the hung device (`eatsEnabled`),
 *   and the timeouts after one are the ones a re-enable bought ("time out once more").
 * - A *miss* is a device still hung at the end of the run, an invalidation to which timed out
 *   during that hang while it was not fenced, with no fence since.
 *
 * Pure and deterministic: the same runs and seed give the same report.
 */
import fc from 'fast-check';
import type { SimEvent } from '../impl/events.ts';
import { BLOCKED_BROKEN, BLOCKED_RESETTING } from '../impl/kernel.ts';
import { Variant } from '../impl/variants.ts';
import { isSafety, propertyRank } from './invariants.ts';
import { runScenario } from './runner.ts';
import { type Scenario, scenarioArb } from './scenario.ts';

/** The designs compared, in report order. */
export const DESIGNS = ['v4', 'v4-minimal'] as const;

/** An event with the virtual time (µs) at which it was emitted. */
export interface TimedEvent {
  readonly at: number;
  readonly e: SimEvent;
}

export interface Episode {
  readonly dev: number;
  /** Distinct failing CMD_SYNCs that named the device. */
  readonly timeouts: number;
  /** ATS turned back on for the device while it was hung. */
  readonly reenables: number;
  /** Of `timeouts`, those of invalidations sent after a re-enable. */
  readonly timeoutsAfterReenable: number;
  /** Fenced at least once during the episode. */
  readonly fenced: boolean;
  /** Still open at the end of the run (no working reset). */
  readonly open: boolean;
}

/** One run, read from its events. */
export interface RunTally {
  readonly fences: number;
  readonly falseFences: number;
  readonly trueFences: number;
  /** Of `falseFences`, those of a device whose last reset failed (not ready, yet never hung). */
  readonly falseFencesAfterFailedReset: number;
  /**
   * Fences of a device blocked for a reset (not counted in `fences`): the late report of a
   * timeout of the reset's own ATC flush, or of an invalidation sent into its FLR.
   */
  readonly fencesInReset: number;
  /** Transitions to BLOCKED_BROKEN. */
  readonly coreQuarantines: number;
  /** Of `coreQuarantines`, those of a device that had not hung since its last working reset. */
  readonly falseCoreQuarantines: number;
  readonly episodes: readonly Episode[];
  readonly missed: number;
  /** Failing CMD_SYNCs naming a device outside any hang episode (device × SYNC). */
  readonly timeoutsOutsideEpisodes: number;
}

interface EpisodeAcc {
  readonly dev: number;
  readonly syncs: Set<number>;
  readonly after: Set<number>;
  reenables: number;
  reenabledAt: number;
  fenced: boolean;
  open: boolean;
}

interface DevState {
  /** The open hang episode. */
  episode: EpisodeAcc | null;
  /** The episode the last working reset ended, and when that reset completed (µs). */
  ended: EpisodeAcc | null;
  okResetAt: number;
  fenced: boolean;
  /** Blocked for a reset (BLOCKED_RESETTING) now. */
  resetting: boolean;
  /** An invalidation timed out while the device was not fenced, and no fence followed yet. */
  unanswered: boolean;
  lastResetFailed: boolean;
}

/** Reads one run's events (in emission order). */
export function tallyEvents(events: readonly TimedEvent[]): RunTally {
  const devs = new Map<number, DevState>();
  const dev = (d: number): DevState => {
    let s = devs.get(d);
    if (s === undefined) {
      s = {
        episode: null,
        ended: null,
        okResetAt: -1,
        fenced: false,
        resetting: false,
        unanswered: false,
        lastResetFailed: false,
      };
      devs.set(d, s);
    }
    return s;
  };
  const episodes: EpisodeAcc[] = [];
  let fences = 0;
  let falseFences = 0;
  let falseFencesAfterFailedReset = 0;
  let fencesInReset = 0;
  let coreQuarantines = 0;
  let falseCoreQuarantines = 0;
  const outside = new Set<string>();
  /**
   * The episode a fence of `s` belongs to: the open one, or inside a reset (`inReset`: blocked
   * for it when fenced) the one the reset ended.
   */
  const fencedEpisode = (s: DevState, inReset: boolean): EpisodeAcc | null =>
    s.episode ?? (inReset ? s.ended : null);
  const fence = (s: DevState, inReset: boolean): void => {
    s.unanswered = false;
    const ep = fencedEpisode(s, inReset);
    if (ep !== null) ep.fenced = true;
    if (s.fenced) return;
    s.fenced = true;
    if (inReset) {
      fencesInReset++;
      return;
    }
    fences++;
    if (s.episode === null) {
      falseFences++;
      if (s.lastResetFailed) falseFencesAfterFailedReset++;
    }
  };

  for (const { at, e } of events) {
    switch (e.kind) {
      case 'hang': {
        const s = dev(e.dev);
        if (s.episode === null) {
          s.episode = {
            dev: e.dev,
            syncs: new Set(),
            after: new Set(),
            reenables: 0,
            reenabledAt: -1,
            fenced: false,
            open: true,
          };
          episodes.push(s.episode);
        }
        break;
      }
      case 'endpointReset': {
        const s = dev(e.dev);
        s.lastResetFailed = !e.ok;
        if (e.ok) {
          if (s.episode !== null) s.episode.open = false;
          s.ended = s.episode;
          s.episode = null;
          s.okResetAt = at;
          s.fenced = false;
          s.unanswered = false;
        }
        break;
      }
      case 'atsFenced': {
        const s = dev(e.dev);
        fence(s, s.resetting);
        break;
      }
      case 'blocked': {
        const s = dev(e.dev);
        // A quarantine is judged by the state it leaves (the event's own `from`).
        const inReset = e.from === BLOCKED_RESETTING;
        if (e.to === BLOCKED_BROKEN && e.from !== BLOCKED_BROKEN) {
          coreQuarantines++;
          if (fencedEpisode(s, inReset) === null) falseCoreQuarantines++;
          fence(s, inReset);
        }
        s.resetting = e.to === BLOCKED_RESETTING;
        break;
      }
      case 'eatsEnabled': {
        const s = dev(e.dev);
        s.fenced = false;
        if (s.episode !== null) {
          s.episode.reenables++;
          s.episode.reenabledAt = at;
        }
        break;
      }
      case 'syncAtcError':
        e.devs.forEach((d, i) => {
          const s = dev(d);
          const sentAt = e.sentAt[i]!;
          // Sent before the last working reset (into the FLR, which drops it): the failure
          // surfaces after the reset but belongs to the episode that reset ended.
          const ep = sentAt < s.okResetAt ? s.ended : s.episode;
          if (ep !== null) {
            ep.syncs.add(e.pos);
            if (ep.reenabledAt >= 0 && sentAt >= ep.reenabledAt) ep.after.add(e.pos);
          } else outside.add(`${d}:${e.pos}`);
          // A miss is judged per episode: a timeout before the hang (a device left not ready by
          // a failed reset) is counted outside episodes, not as the episode unanswered.
          if (!s.fenced && ep !== null && ep === s.episode) s.unanswered = true;
        });
        break;
      default:
        break;
    }
  }
  let missed = 0;
  for (const s of devs.values()) if (s.episode !== null && s.unanswered) missed++;
  return {
    fences,
    fencesInReset,
    falseFences,
    trueFences: fences - falseFences,
    falseFencesAfterFailedReset,
    coreQuarantines,
    falseCoreQuarantines,
    episodes: episodes.map((ep) => ({
      dev: ep.dev,
      timeouts: ep.syncs.size,
      reenables: ep.reenables,
      timeoutsAfterReenable: ep.after.size,
      fenced: ep.fenced,
      open: ep.open,
    })),
    missed,
    timeoutsOutsideEpisodes: outside.size,
  };
}

export interface Measured {
  readonly tally: RunTally;
  /** Property ids violated in the run, most severe first, each once. */
  readonly violated: readonly string[];
}

/** Runs one scenario under a design with every observer on, and reads its events. */
export function measureScenario(s: Scenario, v: Variant): Measured {
  const events: TimedEvent[] = [];
  const r = runScenario(s, v, {
    onSystem: (sys) => {
      sys.k.ev.on((e) => events.push({ at: sys.m.now, e }));
    },
  });
  const violated = [...new Set(r.violations.map((x) => x.property))];
  return { tally: tallyEvents(events), violated };
}

export interface ViolationCount {
  readonly property: string;
  readonly safety: boolean;
  /** Scenarios in which it was violated. */
  readonly scenarios: number;
  /** The index (in the sample) of the first of them, to replay it. */
  readonly first: number;
}

export interface DesignStats {
  readonly design: string;
  readonly scenarios: number;
  readonly fences: number;
  readonly falseFences: number;
  readonly trueFences: number;
  readonly falseFencesAfterFailedReset: number;
  readonly scenariosWithFalseFence: number;
  readonly fencesInReset: number;
  readonly coreQuarantines: number;
  readonly falseCoreQuarantines: number;
  readonly episodes: number;
  /** Episodes in which at least one invalidation to the device timed out. */
  readonly reachedEpisodes: number;
  /** Over reached episodes. */
  readonly timeouts: number;
  readonly maxTimeoutsPerEpisode: number;
  readonly reenables: number;
  readonly episodesReenabled: number;
  readonly timeoutsAfterReenable: number;
  readonly missed: number;
  readonly timeoutsOutsideEpisodes: number;
  readonly violations: readonly ViolationCount[];
}

export interface TradeoffReport {
  readonly runs: number;
  readonly seed: number;
  readonly designs: readonly DesignStats[];
}

/** The scenarios of a report: `runs` samples of the generic arbitrary from `seed`. */
export function sampleScenarios(runs: number, seed: number): Scenario[] {
  return runs === 0 ? [] : fc.sample(scenarioArb, { seed, numRuns: runs });
}

/** Adds up the measurements of one design's runs (in sample order). */
export function summarize(design: string, runs: readonly Measured[]): DesignStats {
  let fences = 0;
  let falseFences = 0;
  let falseFencesAfterFailedReset = 0;
  let scenariosWithFalseFence = 0;
  let fencesInReset = 0;
  let coreQuarantines = 0;
  let falseCoreQuarantines = 0;
  let episodes = 0;
  let reachedEpisodes = 0;
  let timeouts = 0;
  let maxTimeoutsPerEpisode = 0;
  let reenables = 0;
  let episodesReenabled = 0;
  let timeoutsAfterReenable = 0;
  let missed = 0;
  let timeoutsOutsideEpisodes = 0;
  const viol = new Map<string, { scenarios: number; first: number }>();
  runs.forEach(({ tally: t, violated }, i) => {
    fences += t.fences;
    falseFences += t.falseFences;
    falseFencesAfterFailedReset += t.falseFencesAfterFailedReset;
    if (t.falseFences > 0) scenariosWithFalseFence++;
    fencesInReset += t.fencesInReset;
    coreQuarantines += t.coreQuarantines;
    falseCoreQuarantines += t.falseCoreQuarantines;
    missed += t.missed;
    timeoutsOutsideEpisodes += t.timeoutsOutsideEpisodes;
    for (const ep of t.episodes) {
      episodes++;
      if (ep.timeouts > 0) reachedEpisodes++;
      timeouts += ep.timeouts;
      maxTimeoutsPerEpisode = Math.max(maxTimeoutsPerEpisode, ep.timeouts);
      reenables += ep.reenables;
      if (ep.reenables > 0) episodesReenabled++;
      timeoutsAfterReenable += ep.timeoutsAfterReenable;
    }
    for (const p of violated) {
      const c = viol.get(p);
      if (c === undefined) viol.set(p, { scenarios: 1, first: i });
      else c.scenarios++;
    }
  });
  const violations = [...viol]
    .map(([property, c]) => ({ property, safety: isSafety(property), ...c }))
    .sort(
      (a, b) => propertyRank(a.property) - propertyRank(b.property) || (a.property < b.property ? -1 : 1),
    );
  return {
    design,
    scenarios: runs.length,
    fences,
    falseFences,
    trueFences: fences - falseFences,
    falseFencesAfterFailedReset,
    scenariosWithFalseFence,
    fencesInReset,
    coreQuarantines,
    falseCoreQuarantines,
    episodes,
    reachedEpisodes,
    timeouts,
    maxTimeoutsPerEpisode,
    reenables,
    episodesReenabled,
    timeoutsAfterReenable,
    missed,
    timeoutsOutsideEpisodes,
    violations,
  };
}

export interface TradeoffOptions {
  readonly runs: number;
  readonly seed: number;
  readonly designs?: readonly string[];
  /** Called after each run (for progress); does not change the report. */
  readonly onRun?: (design: string, done: number) => void;
}

/** Runs the same sample under each design and adds up what each gives up. */
export function tradeoffs(opts: TradeoffOptions): TradeoffReport {
  const scenarios = sampleScenarios(opts.runs, opts.seed);
  const designs = (opts.designs ?? DESIGNS).map((name) => {
    const v = Variant.parse(name);
    const runs = scenarios.map((s, i) => {
      const m = measureScenario(s, v);
      opts.onRun?.(name, i + 1);
      return m;
    });
    return summarize(name, runs);
  });
  return { runs: opts.runs, seed: opts.seed, designs };
}

const per1000 = (n: number, runs: number): string => (runs === 0 ? '-' : ((1000 * n) / runs).toFixed(1));
const pct = (n: number, of: number): string => (of === 0 ? '-' : `${((100 * n) / of).toFixed(1)}%`);
const mean = (n: number, of: number): string => (of === 0 ? '-' : (n / of).toFixed(2));

/** The rows of the side-by-side table: a label and one cell per design. */
export function tableRows(r: TradeoffReport): [string, ...string[]][] {
  const row = (label: string, f: (d: DesignStats) => string): [string, ...string[]] => [
    label,
    ...r.designs.map(f),
  ];
  const props = [...new Set(r.designs.flatMap((d) => d.violations.map((v) => v.property)))].sort(
    (a, b) => propertyRank(a) - propertyRank(b) || (a < b ? -1 : 1),
  );
  return [
    row('fences (driver ATS fence or core BROKEN), per 1000 scenarios', (d) =>
      per1000(d.fences, d.scenarios),
    ),
    row('false fences (device had not hung), per 1000', (d) => per1000(d.falseFences, d.scenarios)),
    row('false fences, share of all fences', (d) => pct(d.falseFences, d.fences)),
    row('  of which after a failed reset', (d) => String(d.falseFencesAfterFailedReset)),
    row(
      'scenarios with a false fence',
      (d) => `${d.scenariosWithFalseFence} (${pct(d.scenariosWithFalseFence, d.scenarios)})`,
    ),
    row('true fences (hung device fenced), per 1000', (d) => per1000(d.trueFences, d.scenarios)),
    row('fences of a device blocked for a reset (not above)', (d) => String(d.fencesInReset)),
    row('missed: hung at the end, timed out, never fenced', (d) => String(d.missed)),
    row('core quarantines (BLOCKED_BROKEN), per 1000', (d) => per1000(d.coreQuarantines, d.scenarios)),
    row('  of a device that had not hung', (d) => String(d.falseCoreQuarantines)),
    row('hang episodes / reached by an invalidation', (d) => `${d.episodes} / ${d.reachedEpisodes}`),
    row('ATC timeouts per reached episode: mean', (d) => mean(d.timeouts, d.reachedEpisodes)),
    row('ATC timeouts per episode: max', (d) => String(d.maxTimeoutsPerEpisode)),
    row('ATS re-enabled for a hung device (episodes)', (d) => `${d.reenables} (${d.episodesReenabled})`),
    row('ATC timeouts after a re-enable', (d) => String(d.timeoutsAfterReenable)),
    row('ATC timeouts outside any hang episode', (d) => String(d.timeoutsOutsideEpisodes)),
    ...props.map((p) =>
      row(`violated: ${p}${isSafety(p) ? '' : ' (conformance)'} (scenarios)`, (d) => {
        const c = d.violations.find((x) => x.property === p);
        return c === undefined ? '0' : `${c.scenarios} (first #${c.first})`;
      }),
    ),
  ];
}

/** The report as a Markdown table. */
export function renderTable(r: TradeoffReport): string {
  const rows = tableRows(r);
  const head = `| ${r.runs} scenarios, seed ${r.seed} | ${r.designs.map((d) => `\`${d.design}\``).join(' | ')} |`;
  const sep = `|---|${r.designs.map(() => '---:|').join('')}`;
  return [head, sep, ...rows.map((x) => `| ${x.join(' | ')} |`)].join('\n');
}
