import { describe, expect, it } from 'vitest';
import type { LogLine, TraceStep } from '../impl/sim/machine.ts';
import { mermaidText, renderMermaid } from './mermaid.ts';
import { renderTimeline } from './timeline.ts';

const T = (step: number, actor: string, cpu: number, kind: TraceStep['kind'], label: string): TraceStep => ({
  step,
  time: 0,
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

const trace = [
  T(1, 'unmap#2', 0, 'task', 'write 1 command(s) + CMD_SYNC'),
  T(2, 'unmap#2', 0, 'task', 'cmdq shared lock'),
  T(3, 'SMMU', -1, 'agent', 'consume ATC_INV sid 0; then <wait>'),
  T(4, 'time', -1, 'time', 'time advances to 50.0 ms'),
  T(5, 'smmu-gerror-irq', 1, 'irq-entry', 'interrupt taken'),
  T(6, 'kworker/0', 0, 'task', 'run dev0 broken_work'),
];
const log = [
  L(5, 1, 'smmu-gerror-irq', 'err', 'arm-smmu-v3: CMDQ error (cons 0x03000002): ATC invalidate timeout'),
];

describe('renderMermaid', () => {
  const out = renderMermaid(trace, log);
  const lines = out.split('\n');

  it('is a sequence diagram with one participant per lane, in the text timeline order', () => {
    expect(lines[0]).toBe('sequenceDiagram');
    const participants = lines.filter((l) => l.trim().startsWith('participant'));
    expect(participants).toEqual([
      '  participant L0 as CPU0',
      '  participant L1 as CPU1 irq (smmu-gerror-irq)',
      '  participant L2 as hardware (SMMU)',
    ]);
    // The text timeline has the same lanes, in the same order.
    const header = renderTimeline(trace, log, { width: 200 }).split('\n')[0]!;
    expect(header.split('|').map((s) => s.trim())).toEqual([
      'CPU0',
      'CPU1 irq (smmu-gerror-irq)',
      'hardware (SMMU)',
    ]);
  });

  it('draws each selected step as a message of its lane, time as a note across, the log as a note', () => {
    expect(out).toContain('  L0->>L0: [unmap#35;2] write 1 command(s) + CMD_SYNC');
    expect(out).not.toContain('cmdq shared lock');
    expect(out).toContain('  Note over L0,L2: time advances to 50.0 ms');
    expect(out).toContain('  L1->>L1: interrupt taken');
    expect(out).toContain(
      '  Note over L1: ! err: arm-smmu-v3: CMDQ error (cons 0x03000002): ATC invalidate timeout',
    );
    expect(out).toContain('  L0->>L0: [kworker/0] run dev0 broken_work');
    // The log note follows its step.
    expect(lines.findIndex((l) => l.includes('Note over L1'))).toBe(
      lines.findIndex((l) => l.includes('interrupt taken')) + 1,
    );
  });

  it('never lets a label end a statement or open a comment', () => {
    expect(out).toContain('consume ATC_INV sid 0#59; then #lt;wait#gt;');
    for (const l of lines.slice(1)) {
      // Text is what follows the statement's first colon (or `as` for a participant).
      const text = l.includes(': ') ? l.slice(l.indexOf(': ') + 2) : l.replace(/^ *participant L\d+ as /, '');
      expect(text.replace(/#(\d+|lt|gt);/g, '')).not.toMatch(/[#;<>]/);
    }
  });

  it('caps the number of items', () => {
    const many = Array.from({ length: 50 }, (_, i) => T(i + 1, 'a', 0, 'task', `step ${i}`));
    const capped = renderMermaid(many, [], { maxItems: 10 }).split('\n');
    expect(capped.filter((l) => l.includes('->>'))).toHaveLength(10);
    expect(capped.at(-1)).toMatch(/40 more steps and log lines: see timeline\.txt/);
  });
});

describe('mermaidText', () => {
  it('encodes the characters Mermaid reads as syntax and collapses whitespace', () => {
    expect(mermaidText('a#b;c<d>e\n  f')).toBe('a#35;b#59;c#lt;d#gt;e f');
  });
});
