/**
 * The tegra241 CMDQV topology option (Topology.vcmdq): which queue each command goes to, how an
 * ATC timeout on the VCMDQ is reported (its own GERROR page and interrupt) and drained (its own
 * cmdq_err_handler under its own cmdq_err_lock, P14/P15), and that without the option there is
 * no second queue. Scenario-level checks (generator, file format, replay, findings): properties/vcmdq.test.ts.
 */
import { describe, expect, test } from 'vitest';
import type { Cmd } from '../hw/cmd.ts';
import { CMDQ_ERR_CERROR_ATC_INV_IDX, GERROR_CMDQ_ERR, type HwCmdq } from '../hw/smmu.ts';
import { ArrayChoices, type TraceStep } from '../sim/machine.ts';
import { type Op, System, type Topology } from '../system.ts';
import { Variant } from '../variants.ts';

const topo = (over: Partial<Topology> = {}): Topology => ({
  cpus: 2,
  devices: [{ ats: true, sids: 2 }],
  gerrorIrqCpu: 0,
  queueShift: 3,
  batchEntries: 3,
  atcTimeoutUs: 50_000,
  iovas: 1,
  vcmdq: { irqCpu: 1 },
  ...over,
});

function booted(t: Topology, variant = 'v4'): System {
  const sys = new System(t, Variant.parse(variant), new ArrayChoices([]));
  sys.m.tracing = true;
  expect(sys.setup()).toBe('quiescent');
  return sys;
}

/** The commands each hardware queue consumed, from the trace ('consume …' steps of its agent). */
function consumed(trace: readonly TraceStep[], agent: string): string[] {
  return trace
    .filter((t) => t.actor === agent && t.label.startsWith('consume '))
    .map((t) => t.label.slice(8));
}

const ops = (cmds: readonly string[]): Set<string> => new Set(cmds.map((c) => c.split(' ')[0]!));

/** Every command written to a ring (what is left in its slots). */
const ringOps = (q: HwCmdq): Set<Cmd['op']> =>
  new Set(q.ring.filter((c): c is Cmd => c !== null).map((c) => c.op));

describe('routing (tegra241_cmdqv_get_cmdq, guest VINTF)', () => {
  test('probe, attach and unmap: TLBI and ATC_INV with their CMD_SYNC on the VCMDQ, CFGI_STE on the SMMU queue', () => {
    const sys = booted(topo());
    expect(sys.runRound([{ kind: 'attach', cpu: 1, dev: 0, domain: 1 }], 0)).toBe('quiescent');
    expect(sys.runRound([{ kind: 'map', cpu: 0, domain: 1, iova: 0 }], 1)).toBe('quiescent');
    expect(sys.runRound([{ kind: 'unmap', cpu: 0, domain: 1, iova: 0 }], 2)).toBe('quiescent');
    const vq = consumed(sys.m.trace, 'VCMDQ0');
    const main = consumed(sys.m.trace, 'SMMU');
    expect(ops(vq)).toEqual(new Set(['TLBI', 'ATC_INV', 'CMD_SYNC']));
    expect(ops(main)).toEqual(new Set(['CFGI_STE', 'CMD_SYNC']));
    expect(ringOps(sys.k.smmu.hw.vcmdq!)).toEqual(new Set(['TLBI', 'ATC_INV', 'CMD_SYNC']));
    expect(ringOps(sys.k.smmu.hw.cmdq)).toEqual(new Set(['CFGI_STE', 'CMD_SYNC']));
    // Each batch ends with its own CMD_SYNC on its own queue: one SYNC there per PROD write.
    const prodWrites = (vcmdq: boolean) =>
      sys.m.trace.filter(
        (t) =>
          t.kind === 'task' && t.label.startsWith('write PROD') && t.label.endsWith(' on vcmdq0') === vcmdq,
      ).length;
    expect(vq.filter((c) => c === 'CMD_SYNC').length).toBe(prodWrites(true));
    expect(main.filter((c) => c === 'CMD_SYNC').length).toBe(prodWrites(false));
    expect(prodWrites(true)).toBeGreaterThan(0);
  });

  test('an unmap: the issuer writes its TLBI + ATC_INVs + CMD_SYNC to the VCMDQ in one reservation', () => {
    const sys = booted(topo());
    const from = sys.m.trace.length;
    expect(sys.runRound([{ kind: 'unmap', cpu: 1, domain: 0, iova: 0 }], 0)).toBe('quiescent');
    const labels = sys.m.trace
      .slice(from)
      .filter((t) => t.actor === 'unmap#0')
      .map((t) => t.label);
    expect(labels.filter((l) => l.startsWith('reserve'))).toEqual([
      expect.stringMatching(/^reserve 4 slots at 0x\w+ on vcmdq0$/),
    ]);
    expect(consumed(sys.m.trace.slice(from), 'VCMDQ0')).toEqual([
      'TLBI domain 0',
      'ATC_INV sid 0',
      'ATC_INV sid 1',
      'CMD_SYNC',
    ]);
    expect(consumed(sys.m.trace.slice(from), 'SMMU')).toEqual([]);
  });
});

/** The scenario of the tests below: dev0 hangs, then an unmap's invalidation to it times out. */
const HANG_THEN_UNMAP: readonly (readonly Op[])[] = [
  [{ kind: 'hang', dev: 0 }],
  [{ kind: 'unmap', cpu: 0, domain: 0, iova: 0 }],
];

describe('an ATC timeout on the VCMDQ', () => {
  test("sets the VCMDQ's CONS.ERR and GERROR.CMDQ_ERR and raises the CMDQV interrupt; the SMMU queue is untouched", () => {
    const sys = booted(topo({ devices: [{ ats: true, sids: 1 }] }));
    const { hw } = sys.k.smmu;
    const vq = hw.vcmdq!;
    // The state right after the step in which the CMD_SYNC failed.
    let failed = false;
    let at: null | { consErr: number; active: number; pending: boolean; main: [number, number, boolean] } =
      null;
    sys.k.ev.on((e) => {
      if (e.kind === 'syncAtcError') {
        expect(e.cmdq).toBe('vcmdq0');
        failed = true;
      }
    });
    sys.m.afterStep = () => {
      if (!failed || at !== null) return;
      at = {
        consErr: (vq.cons >>> 24) & 0x7f,
        active: vq.gerror ^ vq.gerrorn,
        pending: vq.irq.pending,
        main: [(hw.cmdq.cons >>> 24) & 0x7f, hw.cmdq.gerror ^ hw.cmdq.gerrorn, hw.cmdq.irq.pending],
      };
    };
    HANG_THEN_UNMAP.forEach((r, i) => sys.runRound(r, i));
    expect(at).toEqual({
      consErr: CMDQ_ERR_CERROR_ATC_INV_IDX,
      active: GERROR_CMDQ_ERR,
      pending: true,
      main: [0, 0, false],
    });
    expect(vq.irq.name).toBe('cmdqv-irq');
    expect(vq.irq.cpu).toBe(1);
  });

  test.each(['v4', 'mainline'])(
    '%s: handled by tegra241_cmdqv_isr on the VCMDQ (P12 mark on its bitmap), never by the SMMU GERROR handler',
    (variant) => {
      const sys = booted(topo({ devices: [{ ats: true, sids: 1 }] }), variant);
      const marks: boolean[][] = [];
      const vcmdq = sys.k.smmu.cmdqv!.lvcmdqs[0]!;
      sys.m.afterStep = () => {
        if (vcmdq.atcSyncTimeouts.some((b) => b)) marks.push([...vcmdq.atcSyncTimeouts]);
      };
      HANG_THEN_UNMAP.forEach((r, i) => sys.runRound(r, i));
      const trace = sys.m.trace;
      const log = sys.m.log.map((l) => l.text);
      const isr = trace.filter((t) => t.actor === 'cmdqv-irq').map((t) => t.label);
      expect(isr).toContain('read LVCMDQ_ERR_MAP');
      expect(trace.some((t) => t.actor === 'smmu-gerror-irq')).toBe(false);
      expect(log.some((l) => l.startsWith('tegra241_cmdqv: unexpected error reported.'))).toBe(true);
      expect(log.some((l) => l.includes('unexpected global error'))).toBe(false);
      expect(log.some((l) => l.includes('ATC invalidate timeout'))).toBe(true);
      // P12 marks the failing SYNC's slot in the VCMDQ's own bitmap; the SMMU queue's stays clear.
      expect(marks.length > 0).toBe(variant === 'v4');
      expect(sys.k.smmu.cmdq.atcSyncTimeouts.some((b) => b)).toBe(false);
      const vq = sys.k.smmu.hw.vcmdq!;
      expect(vq.gerror).toBe(vq.gerrorn);
      if (variant === 'v4') {
        // P14: under the VCMDQ's own cmdq_err_lock, never the SMMU queue's.
        expect(isr).toContain('spin_lock_irqsave(vcmdq0 cmdq_err_lock)');
        expect(isr).toContain('read vcmdq0 GERROR/GERRORN');
        expect(trace.some((t) => t.label.includes('smmu cmdq_err_lock'))).toBe(false);
        // P24: the retry pins it on dev0 and its ATS is fenced (CFGI_STE on the SMMU queue).
        expect(sys.k.pdevs[0]!.master!.atsBroken || sys.k.gdevs[0]!.blocked !== 0).toBe(true);
      } else {
        // Before P14: no lock, no GERROR/GERRORN check before skipping.
        expect(isr).toContain('read vcmdq0 GERROR');
        expect(isr.some((l) => l.includes('cmdq_err_lock'))).toBe(false);
      }
    },
  );

  test('v4: the issuer whose poll times out (the CMDQV IRQ is on its own CPU, IRQs off) drains its own queue: P15 on the VCMDQ', () => {
    // One CPU: the issuer spins with IRQs off on the interrupt's CPU until its 1 s poll expires.
    const t = topo({ cpus: 1, devices: [{ ats: true, sids: 1 }], vcmdq: { irqCpu: 0 } });
    const run = (variant: string) => {
      const sys = booted(t, variant);
      HANG_THEN_UNMAP.forEach((r, i) => sys.runRound(r, i));
      return sys;
    };
    const sys = run('v4');
    const issuer = sys.m.trace.filter((x) => x.actor === 'unmap#1').map((x) => x.label);
    expect(issuer).toContain('spin_lock_irqsave(vcmdq0 cmdq_err_lock)');
    expect(issuer).toContain('skip CMDQ_ERR; toggle vcmdq0 GERRORN.CMDQ_ERR');
    expect(sys.m.log.map((l) => l.text)).toContainEqual(
      expect.stringMatching(/^arm-smmu-v3: CMD_SYNC for ATC_INV timeout at prod=/),
    );
    // Without P15's drain the same issuer takes it for a plain timeout.
    const late = run('v4+late-isr-misclassified');
    expect(late.m.trace.some((x) => x.actor === 'unmap#1' && x.label.includes('cmdq_err_lock'))).toBe(false);
    expect(late.m.log.map((l) => l.text)).toContainEqual(
      expect.stringMatching(/^arm-smmu-v3: CMD_SYNC timeout at /),
    );
  });

  test('v4 (P14): the ISR and an issuer draining the VCMDQ at once skip the error exactly once', () => {
    // Every schedule of the CMDQV interrupt (cpu1) against an issuer's drain (cpu0, P15/P16's
    // tegra241_vcmdq_handle_cmdq_err) of one pending ATC timeout.
    let isrLostRace = 0;
    for (let a = 0; a < 3 ** 6; a++) {
      const choices = Array.from({ length: 6 }, (_, i) => Math.floor(a / 3 ** i) % 3);
      const sys = booted(topo({ devices: [{ ats: true, sids: 1 }] }));
      const cmdq = sys.k.smmu.cmdqv!.lvcmdqs[0]!;
      const vq = cmdq.hw;
      vq.cons = (vq.cons & ~(0x7f << 24)) | (CMDQ_ERR_CERROR_ATC_INV_IDX << 24);
      vq.raiseGerror(GERROR_CMDQ_ERR);
      sys.m.setChoices(new ArrayChoices(choices));
      sys.m.spawn('drain', 0, cmdq.cmdqErrHandler!(sys.k, cmdq));
      const from = sys.m.trace.length;
      expect(sys.m.runRound()).toBe('quiescent');
      const skips = sys.m.log.filter((l) => l.text.includes('ATC invalidate timeout'));
      expect(skips).toHaveLength(1);
      expect(vq.gerror).toBe(vq.gerrorn);
      expect(cmdq.atcSyncTimeouts.filter((b) => b)).toHaveLength(1);
      // The ISR saw the error in its map, but the issuer acknowledged it first.
      const isr = sys.m.trace.slice(from).filter((t) => t.actor === 'cmdqv-irq');
      if (isr.some((t) => t.label === 'read LVCMDQ_ERR_MAP') && skips[0]!.actor === 'drain') isrLostRace++;
    }
    expect(isrLostRace).toBeGreaterThan(0);
  });
});

describe('without the option', () => {
  test('no CMDQV: no second queue, agent or interrupt; events and labels as before', () => {
    const { vcmdq: _, ...plain } = topo();
    const sys = booted(plain);
    expect(sys.k.smmu.cmdqv).toBeNull();
    expect(sys.k.smmu.hw.vcmdq).toBeNull();
    HANG_THEN_UNMAP.forEach((r, i) => sys.runRound(r, i));
    expect(sys.m.trace.some((t) => t.actor === 'VCMDQ0' || t.actor === 'cmdqv-irq')).toBe(false);
    expect(sys.m.trace.some((t) => t.label.includes('vcmdq'))).toBe(false);
  });
});
