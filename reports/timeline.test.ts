import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fmtTime, type LogLine, type TraceStep } from '../impl/sim/machine.ts';
import { renderSteps, renderTimeline, wrapText } from './timeline.ts';

const T = (
  step: number,
  time: number,
  actor: string,
  cpu: number,
  kind: TraceStep['kind'],
  label: string,
): TraceStep => ({
  step,
  time,
  actor,
  cpu,
  kind,
  label,
});
const L = (step: number, cpu: number, actor: string, level: LogLine['level'], text: string): LogLine => ({
  step,
  time: 0,
  cpu,
  actor,
  level,
  text,
});

const cpLen = (s: string) => [...s].length;
/** Whitespace- and column-separated tokens of a text. */
const tokens = (s: string) => s.split(/[\s|]+/).filter((t) => t !== '');

// ---- a small fixed example -------------------------------------------------------------------

const trace: TraceStep[] = [
  T(1, 0, 'unmap#2', 0, 'task', 'write 1 command(s) + CMD_SYNC'),
  T(2, 0, 'unmap#2', 0, 'task', 'cmdq shared lock'),
  T(3, 0, 'unmap#2', 0, 'task', 'waits: CMD_SYNC at 0x00000002 consumed'),
  T(4, 0, 'SMMU', -1, 'agent', 'consume ATC_INV sid 0'),
  T(5, 0, 'SMMU', -1, 'agent', 'waits: ATC invalidation completions'),
  T(6, 50000, 'time', -1, 'time', 'time advances to 50.0 ms'),
  T(7, 50000, 'SMMU', -1, 'agent', 'CMD_SYNC fails: CERROR_ATC_INV_SYNC, GERROR.CMDQ_ERR toggles'),
  T(8, 50000, 'smmu-gerror-irq', 1, 'irq-entry', 'interrupt taken'),
  T(9, 50000, 'smmu-gerror-irq', 1, 'irq', 'read GERROR/GERRORN'),
  T(10, 50000, 'smmu-gerror-irq', 1, 'irq', 'write GERRORN'),
  T(11, 50000, 'smmu-gerror-irq', 1, 'irq', 'returns'),
  T(12, 50000, 'unmap#2', 0, 'task', 'waits: CMD_SYNC at 0x00000002 consumed'),
  T(13, 50000, 'unmap#2', 0, 'task', 'test ATC-timeout bit'),
  T(14, 50000, 'kworker/0', 0, 'task', 'run dev0 broken_work'),
  T(15, 50000, 'kworker/0', 0, 'task', 'dev0: blocked escalates to BLOCKED_BROKEN'),
  T(16, 50000, 'unmap#2', 0, 'task', 'free page 1'),
];
const log: LogLine[] = [
  L(
    10,
    1,
    'smmu-gerror-irq',
    'warn',
    'arm-smmu-v3: unexpected global error reported (0x00000001), this could be serious',
  ),
  L(10, 1, 'smmu-gerror-irq', 'err', 'arm-smmu-v3: CMDQ error (cons 0x03000002): ATC invalidate timeout'),
  L(13, 0, 'unmap#2', 'err', 'arm-smmu-v3: CMD_SYNC for ATC_INV timeout at prod=0x00000002'),
  L(15, 0, 'kworker/0', 'warn', 'dev0: IOMMU has quarantined the device'),
];

describe('renderTimeline: fixed example', () => {
  it('renders the expected diagram', () => {
    const expected = [
      ' CPU0                        | CPU1 irq            | hardware (SMMU)',
      '                             | (smmu-gerror-irq)   |',
      ' ----------------------------+---------------------+----------------------------',
      ' [unmap#2] write 1           |                     |',
      '   command(s) + CMD_SYNC     |                     |',
      ' waits: CMD_SYNC at          |                     |',
      '   0x00000002 consumed       |                     |',
      '                             |                     | consume ATC_INV sid 0',
      '                             |                     | waits: ATC invalidation',
      '                             |                     |   completions',
      '---- 50.0 ms -------------------------------------------------------------------',
      '                             |                     | CMD_SYNC fails:',
      '                             |                     |   CERROR_ATC_INV_SYNC,',
      '                             |                     |   GERROR.CMDQ_ERR toggles',
      '                             | interrupt taken     |',
      '                             | read GERROR/GERRORN |',
      '                             | write GERRORN       |',
      '  ! arm-smmu-v3: unexpected global error reported (0x00000001), this could be',
      '      serious',
      '  ! err: arm-smmu-v3: CMDQ error (cons 0x03000002): ATC invalidate timeout',
      ' test ATC-timeout bit        |                     |',
      '  ! err: arm-smmu-v3: CMD_SYNC for ATC_INV timeout at prod=0x00000002',
      ' [kworker/0] run dev0        |                     |',
      '   broken_work               |                     |',
      ' dev0: blocked escalates to  |                     |',
      '   BLOCKED_BROKEN            |                     |',
      '  ! dev0: IOMMU has quarantined the device',
      ' [unmap#2] free page 1       |                     |',
    ].join('\n');
    expect(renderTimeline(trace, log)).toBe(expected);
  });

  it('drops noisy steps and repeated waits by default, and keeps everything under a custom filter', () => {
    const dflt = renderTimeline(trace, log);
    expect(dflt).not.toContain('cmdq shared lock');
    expect(dflt).not.toContain('returns');
    expect(dflt.match(/0x00000002 consumed/g)).toHaveLength(1);
    const all = renderTimeline(trace, log, { filter: () => true });
    expect(all).toContain('cmdq shared lock');
    expect(all).toContain('returns');
    expect(all.match(/0x00000002 consumed/g)).toHaveLength(2);
    const onlyIrq = renderTimeline(trace, [], { filter: (s) => s.kind === 'irq' || s.kind === 'irq-entry' });
    expect(onlyIrq.split('\n')[0]).toBe(' CPU1 irq (smmu-gerror-irq)');
  });

  it('a lane with one actor names it in the header; a shared lane prefixes cells on a change of actor', () => {
    const out = renderTimeline(trace, log, { width: 160 });
    expect(out.split('\n')[0]).toBe(
      ' CPU0                                      | CPU1 irq (smmu-gerror-irq) | hardware (SMMU)',
    );
    expect(out).toContain('[unmap#2] write 1 command(s) + CMD_SYNC');
    expect(out).toContain('\n waits: CMD_SYNC at 0x00000002 consumed');
    expect(out).toContain('[kworker/0] run dev0 broken_work');
    expect(out).toContain('\n dev0: blocked escalates to BLOCKED_BROKEN');
    expect(out).toContain('[unmap#2] free page 1');
  });

  it('places a log line whose step has no row where its step falls', () => {
    // Step 11 ('returns') is filtered out; its log line goes after step 10's row, before 13's.
    const out = renderTimeline(trace, [
      L(11, 1, 'smmu-gerror-irq', 'WARN', 'WARNING: at handler exit'),
    ]).split('\n');
    const at = out.indexOf('  ! WARN: WARNING: at handler exit');
    expect(out[at - 1]).toContain('write GERRORN');
    expect(out[at + 1]).toContain('test ATC-timeout bit');
  });

  it('rejects a width too small for any lane', () => {
    expect(() => renderTimeline(trace, log, { width: 10 })).toThrow(RangeError);
  });
});

describe('renderSteps', () => {
  it('lists every step with log lines after their step', () => {
    expect(renderSteps(trace.slice(5, 11), log.slice(0, 2))).toBe(
      [
        '#6 t=50000 time: time advances to 50.0 ms',
        '#7 t=50000 SMMU: CMD_SYNC fails: CERROR_ATC_INV_SYNC, GERROR.CMDQ_ERR toggles',
        '#8 t=50000 smmu-gerror-irq@cpu1: interrupt taken',
        '#9 t=50000 smmu-gerror-irq@cpu1: read GERROR/GERRORN',
        '#10 t=50000 smmu-gerror-irq@cpu1: write GERRORN',
        '  ! arm-smmu-v3: unexpected global error reported (0x00000001), this could be serious',
        '  ! err: arm-smmu-v3: CMDQ error (cons 0x03000002): ATC invalidate timeout',
        '#11 t=50000 smmu-gerror-irq@cpu1: returns',
      ].join('\n'),
    );
  });
});

describe('wrapText', () => {
  it('breaks a word longer than the line without losing characters', () => {
    const word = 'spin_lock_irqsave(smmu_cmdq_err_lock_with_a_very_long_name)';
    const lines = wrapText(word, 16, 2);
    expect(lines.length).toBeGreaterThan(3);
    for (const l of lines) expect(cpLen(l)).toBeLessThanOrEqual(16);
    expect(lines.map((l) => l.trim()).join('')).toBe(word);
  });

  it('keeps an over-long word whole in a diagram, across continuation rows of its lane', () => {
    const word = 'x'.repeat(50) + 'END';
    const out = renderTimeline([T(1, 0, 'SMMU', -1, 'agent', word)], [], { width: 20 }).split('\n');
    for (const l of out) expect(cpLen(l)).toBeLessThanOrEqual(20);
    expect(
      out
        .slice(2)
        .map((l) => l.trim())
        .join(''),
    ).toBe(word);
  });
});

// ---- random traces ---------------------------------------------------------------------------

interface LaneSpec {
  readonly lane: string;
  readonly cpu: number;
  readonly kind: 'task' | 'irq' | 'agent';
  readonly actors: readonly string[];
}
const LANES: readonly LaneSpec[] = [
  { lane: 'CPU0', cpu: 0, kind: 'task', actors: ['unmap#2', 'kworker/0'] },
  { lane: 'CPU0 irq', cpu: 0, kind: 'irq', actors: ['smmu-gerror-irq'] },
  { lane: 'CPU1', cpu: 1, kind: 'task', actors: ['reset#3', 'map#5'] },
  { lane: 'CPU1 irq', cpu: 1, kind: 'irq', actors: ['smmu-gerror-irq', 'eventq-irq'] },
  { lane: 'hardware', cpu: -1, kind: 'agent', actors: ['SMMU', 'EP0', 'dma#4', 'hang#1'] },
  { lane: 'CPU2', cpu: 2, kind: 'task', actors: ['probe'] },
  { lane: 'CPU2 irq', cpu: 2, kind: 'irq', actors: ['smmu-gerror-irq'] },
];

/** Words without whitespace, `|` or `~` (markers use `~`), at most 14 characters. */
const word = fc.string({
  unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_()[]:;,.=>#/-+µ'),
  minLength: 1,
  maxLength: 14,
});

/** Joins words into a text of at most `max` characters. */
function upTo(words: readonly string[], max: number): string {
  let s = '';
  for (const w of words) {
    const next = s === '' ? w : `${s} ${w}`;
    if (cpLen(next) > max) break;
    s = next;
  }
  return s;
}

interface Scenario {
  trace: TraceStep[];
  log: LogLine[];
  lanes: LaneSpec[];
}

/**
 * A trace over 1–6 lanes. Every label is `a~N <words> z~N`, at most 120 characters, so each row's
 * first and last line can be found; every log line starts with `L~J`. Time rows come in between.
 */
const scenario: fc.Arbitrary<Scenario> = fc
  .record({
    lanes: fc.subarray([...LANES], { minLength: 1, maxLength: 6 }),
    steps: fc.array(
      fc.record({
        lane: fc.nat(),
        actor: fc.nat(),
        entry: fc.boolean(),
        time: fc.integer({ min: 0, max: 9 }),
        dt: fc.integer({ min: 1, max: 3_000_000 }),
        words: fc.array(word, { maxLength: 30 }),
      }),
      { minLength: 1, maxLength: 25 },
    ),
    logs: fc.array(
      fc.record({
        at: fc.nat(),
        level: fc.constantFrom<LogLine['level']>('err', 'warn', 'info', 'WARN'),
        words: fc.array(word, { maxLength: 40 }),
      }),
      { maxLength: 8 },
    ),
  })
  .map(({ lanes, steps, logs }) => {
    const trace: TraceStep[] = [];
    let step = 0;
    let now = 0;
    for (const s of steps) {
      if (s.time === 0) {
        now += s.dt;
        trace.push(T(++step, now, 'time', -1, 'time', `time advances to ${fmtTime(now)}`));
      }
      const spec = lanes[s.lane % lanes.length]!;
      const actor = spec.actors[s.actor % spec.actors.length]!;
      const kind = spec.kind === 'irq' && s.entry ? 'irq-entry' : spec.kind;
      const n = ++step;
      const marks = `a~${n}  z~${n}`;
      const label = `a~${n} ${upTo(s.words, 120 - cpLen(marks))} z~${n}`.replace('  ', ' ');
      trace.push(T(n, now, actor, spec.cpu, kind, label));
    }
    const rows = trace.filter((s) => s.kind !== 'time');
    // The machine appends log lines in step order.
    const at = logs.map((l) => ({ l, s: rows[l.at % rows.length]! })).sort((x, y) => x.s.step - y.s.step);
    const log = at.map(({ l, s }, j) => ({
      ...L(s.step, s.cpu, s.actor, l.level, `L~${j} ${upTo(l.words, 200)}`.trim()),
      time: s.time,
    }));
    return { trace, log, lanes: [...lanes] };
  });

/** Lines between a row and a log line may only be other log lines. */
const isLogLine = (l: string) => l.startsWith('  ! ') || (/^ {6}\S/.test(l) && !l.includes('|'));

function lineWith(lines: readonly string[], token: string): number {
  const found = lines.flatMap((l, i) => (tokens(l).includes(token) ? [i] : []));
  expect(found, `token ${token} on exactly one line`).toHaveLength(1);
  return found[0]!;
}

describe('renderTimeline: random traces', () => {
  it('keeps every line within the width, with no trailing spaces', () => {
    fc.assert(
      fc.property(scenario, fc.option(fc.integer({ min: 20, max: 160 }), { nil: undefined }), (sc, width) => {
        const out = renderTimeline(sc.trace, sc.log, width === undefined ? {} : { width });
        for (const line of out.split('\n')) {
          expect(cpLen(line)).toBeLessThanOrEqual(width ?? 80);
          expect(line).toBe(line.trimEnd());
        }
      }),
      { numRuns: 300 },
    );
  });

  it('loses no information: every word of every label and log line appears', () => {
    fc.assert(
      fc.property(scenario, fc.integer({ min: 20, max: 160 }), (sc, width) => {
        const out = renderTimeline(sc.trace, sc.log, { width });
        const have = new Map<string, number>();
        for (const t of tokens(out)) have.set(t, (have.get(t) ?? 0) + 1);
        const want = new Map<string, number>();
        for (const s of sc.trace) {
          if (s.kind === 'time') {
            expect(out).toMatch(new RegExp(`^---- ${fmtTime(s.time)} -`, 'm'));
            continue;
          }
          for (const t of tokens(s.label)) want.set(t, (want.get(t) ?? 0) + 1);
        }
        for (const l of sc.log) for (const t of tokens(l.text)) want.set(t, (want.get(t) ?? 0) + 1);
        for (const [t, n] of want)
          expect(have.get(t) ?? 0, `occurrences of '${t}'`).toBeGreaterThanOrEqual(n);
        // Each row is rendered once, in its own lane's diagram.
        for (const s of sc.trace) if (s.kind !== 'time') lineWith(out.split('\n'), `a~${s.step}`);
      }),
      { numRuns: 300 },
    );
  });

  it('puts each log line after its step row and before the next row', () => {
    fc.assert(
      fc.property(scenario, fc.integer({ min: 20, max: 160 }), (sc, width) => {
        const lines = renderTimeline(sc.trace, sc.log, { width }).split('\n');
        sc.log.forEach((l, j) => {
          const row = lineWith(lines, `z~${l.step}`);
          const at = lineWith(lines, `L~${j}`);
          expect(at).toBeGreaterThan(row);
          for (const between of lines.slice(row + 1, at)) expect(isLogLine(between), between).toBe(true);
        });
      }),
      { numRuns: 300 },
    );
  });

  it('renders rows in step order within each diagram', () => {
    fc.assert(
      fc.property(scenario, (sc) => {
        const out = renderTimeline(sc.trace, sc.log);
        const diagrams = out.split(/\n\n(?=\(continued: lanes )/);
        for (const d of diagrams) {
          const steps = tokens(d).flatMap((t) => (/^a~\d+$/.test(t) ? [Number(t.slice(2))] : []));
          expect(steps).toEqual([...steps].sort((x, y) => x - y));
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('renderTimeline: lane splitting', () => {
  /** A header rule line: ` ----+-----+----`. */
  const isRule = (l: string) => /^ -+(\+-+)*$/.test(l);

  it('splits into the fewest diagrams whose lanes get at least 16 characters each', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 7 }), fc.integer({ min: 20, max: 160 }), (n, width) => {
        const lanes = LANES.slice(0, n);
        const tr = lanes.map((spec, i) =>
          T(
            i + 1,
            0,
            spec.actors[0]!,
            spec.cpu,
            spec.kind,
            `step of lane number ${i} with a label long enough to wrap`,
          ),
        );
        const lines = renderTimeline(tr, [], { width }).split('\n');
        const perDiagram = Math.floor((width + 2) / 19); // 1 + 16k + 3(k - 1) <= width
        const diagrams = Math.ceil(n / Math.max(1, perDiagram));
        expect(lines.filter(isRule)).toHaveLength(diagrams);
        expect(lines.filter((l) => l.startsWith('(continued: lanes'))).toHaveLength(diagrams - 1);
        for (const l of lines.filter(isRule))
          expect(l.split('+').length).toBeLessThanOrEqual(Math.max(1, perDiagram));
        for (const l of lines) expect(cpLen(l)).toBeLessThanOrEqual(width);
      }),
      { numRuns: 200 },
    );
  });

  it('six lanes at 80 columns become two diagrams of three, each with its own header', () => {
    const tr = LANES.slice(0, 6).map((spec, i) =>
      T(i + 1, 0, spec.actors[0]!, spec.cpu, spec.kind, `label ${i}`),
    );
    const wide = tr.map((s) => ({ ...s, label: `${s.label} long enough to need more than sixteen columns` }));
    expect(renderTimeline(tr, [], { width: 90 }).split('\n').filter(isRule)).toHaveLength(1);
    const out = renderTimeline(wide, []).split('\n');
    expect(out.filter(isRule)).toHaveLength(2);
    expect(out[0]).toMatch(/^ CPU0 \(unmap#2\) +\| CPU0 irq +\| CPU1 \(reset#3\)$/);
    const cont = out.indexOf('(continued: lanes CPU1 irq, CPU2, hardware)');
    expect(cont).toBeGreaterThan(0);
    expect(out[cont - 1]).toBe('');
    expect(out[cont + 1]).toMatch(/^ CPU1 irq +\| CPU2 \(probe\) +\| hardware \(SMMU\)$/);
    expect(out[cont + 2]).toMatch(/^ \(smmu-gerror-irq\) +\|/);
    // Each row appears once, in the diagram of its lane.
    for (let i = 0; i < 6; i++) expect(out.filter((l) => l.includes(`label ${i}`))).toHaveLength(1);
    expect(out.findIndex((l) => l.includes('label 3'))).toBeGreaterThan(cont);
    expect(out.findIndex((l) => l.includes('label 2'))).toBeLessThan(cont);
  });
});
