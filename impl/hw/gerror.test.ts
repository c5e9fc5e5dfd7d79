/**
 * GERROR causes other than CMDQ_ERR (hw/smmu.ts injectGerror) and what arm_smmu_gerror_handler()
 * does with each: log and acknowledge; on SFM, disable the SMMU (P13: acknowledge everything and
 * return before the other causes).
 */
import { describe, expect, test } from 'vitest';
import { ArrayChoices } from '../sim/machine.ts';
import { System, type Topology } from '../system.ts';
import { Variant } from '../variants.ts';
import {
  GERROR_CAUSE_BIT,
  GERROR_CAUSES,
  GERROR_CMDQ_ERR,
  GERROR_EVTQ_ABT_ERR,
  GERROR_SFM_ERR,
  type GerrorCause,
} from './smmu.ts';
import { oneDevice } from '../../properties/witnesses/witnesses.ts';

const topo: Topology = oneDevice();

const LOG: Record<GerrorCause, string> = {
  'evtq-abort': 'EVTQ write aborted -- events may have been lost',
  'priq-abort': 'PRIQ write aborted -- events may have been lost',
  'msi-cmdq-abort': 'CMDQ MSI write aborted',
  'msi-evtq-abort': 'EVTQ MSI write aborted',
  'msi-priq-abort': 'PRIQ MSI write aborted',
  'msi-gerror-abort': 'GERROR MSI write aborted',
  sfm: 'device has entered Service Failure Mode!',
};

function booted(variant: string): System {
  const sys = new System(topo, Variant.parse(variant), new ArrayChoices([]));
  expect(sys.setup()).toBe('quiescent');
  return sys;
}

describe.each(['v4', 'mainline'])('%s: each injected GERROR cause', (variant) => {
  test.each(GERROR_CAUSES)('%s: its bit toggles, the handler logs it and toggles GERRORN', (cause) => {
    const sys = booted(variant);
    const hw = sys.k.smmu.hw;
    const before = sys.m.log.length;
    hw.injectGerror(cause);
    expect(hw.cmdq.gerror ^ hw.cmdq.gerrorn).toBe(GERROR_CAUSE_BIT[cause]);
    expect(hw.cmdq.irq.pending).toBe(true);
    expect(sys.m.runRound()).toBe('quiescent');
    expect(hw.cmdq.gerrorn).toBe(hw.cmdq.gerror);
    const log = sys.m.log.slice(before).map((l) => l.text);
    expect(log[0]).toBe(
      `arm-smmu-v3: unexpected global error reported (0x${GERROR_CAUSE_BIT[cause].toString(16).padStart(8, '0')}), this could be serious`,
    );
    expect(log).toContain(`arm-smmu-v3: ${LOG[cause]}`);
    // Only SFM stops the SMMU (arm_smmu_device_disable()).
    expect(hw.serving()).toBe(cause !== 'sfm');
    expect(hw.enabled).toBe(cause !== 'sfm');
  });

  test('an active cause is not toggled again until acknowledged', () => {
    const hw = booted(variant).k.smmu.hw;
    hw.injectGerror('evtq-abort');
    hw.injectGerror('evtq-abort');
    expect(hw.cmdq.gerror ^ hw.cmdq.gerrorn).toBe(GERROR_EVTQ_ABT_ERR);
  });
});

describe('with a CMDQ_ERR pending', () => {
  /** Fails the CMD_SYNC at CONS as the SMMU would on an ATC timeout (what HwCmdq.consumer does). */
  function pendingCmdqErr(sys: System): void {
    const q = sys.k.smmu.hw.cmdq;
    q.cons = (q.cons & ~(0x7f << 24)) | (3 << 24);
    q.raiseGerror(GERROR_CMDQ_ERR);
  }

  test('v4: another cause is handled with it: the ATC timeout is marked for the issuer (P12)', () => {
    const sys = booted('v4');
    pendingCmdqErr(sys);
    sys.k.smmu.hw.injectGerror('priq-abort');
    expect(sys.m.runRound()).toBe('quiescent');
    const q = sys.k.smmu.hw.cmdq;
    expect(q.gerrorn).toBe(q.gerror);
    expect(sys.k.smmu.cmdq.atcSyncTimeouts.some((b) => b)).toBe(true);
    const log = sys.m.log.map((l) => l.text);
    expect(log).toContain('arm-smmu-v3: PRIQ write aborted -- events may have been lost');
    expect(log.some((l) => l.includes('ATC invalidate timeout'))).toBe(true);
  });

  test("v4: the issuer's drain (P15) toggles only CMDQ_ERR and leaves the other cause to the IRQ", () => {
    const sys = booted('v4');
    const { k } = sys;
    const q = k.smmu.hw.cmdq;
    pendingCmdqErr(sys);
    k.smmu.hw.injectGerror('evtq-abort');
    // The GERROR IRQ is late (its CPU has IRQs off): the issuer drains first.
    q.irq.pending = false;
    sys.m.spawn('drain', 0, k.smmu.cmdq.cmdqErrHandler!(k, k.smmu.cmdq));
    expect(sys.m.runRound()).toBe('quiescent');
    expect(q.gerror ^ q.gerrorn).toBe(GERROR_EVTQ_ABT_ERR);
    expect(k.smmu.cmdq.atcSyncTimeouts.some((b) => b)).toBe(true);
    // Then the IRQ: it handles what is left.
    sys.m.raise(q.irq);
    expect(sys.m.runRound()).toBe('quiescent');
    expect(q.gerror ^ q.gerrorn).toBe(0);
    const log = sys.m.log.map((l) => l.text);
    expect(log).toContain('arm-smmu-v3: EVTQ write aborted -- events may have been lost');
    expect(log.filter((l) => l.includes('ATC invalidate timeout'))).toHaveLength(1);
  });

  test('v4 (P13): SFM acknowledges the pending CMDQ_ERR without skipping it: no ATC-timeout mark', () => {
    const sys = booted('v4');
    pendingCmdqErr(sys);
    sys.k.smmu.hw.injectGerror('sfm');
    expect(sys.m.runRound()).toBe('quiescent');
    const q = sys.k.smmu.hw.cmdq;
    expect(q.gerrorn).toBe(q.gerror);
    expect(sys.k.smmu.cmdq.atcSyncTimeouts.some((b) => b)).toBe(false);
    const log = sys.m.log.map((l) => l.text);
    expect(log).toContain('arm-smmu-v3: device has entered Service Failure Mode!');
    expect(log.some((l) => l.includes('CMDQ error'))).toBe(false);
    expect(sys.k.smmu.hw.enabled).toBe(false);
  });

  test('mainline: SFM disables the SMMU, then the handler goes on and skips the CMDQ error', () => {
    const sys = booted('mainline');
    pendingCmdqErr(sys);
    sys.k.smmu.hw.injectGerror('sfm');
    expect(sys.m.runRound()).toBe('quiescent');
    const q = sys.k.smmu.hw.cmdq;
    expect(q.gerror ^ q.gerrorn).toBe(0);
    const log = sys.m.log.map((l) => l.text);
    expect(log).toContain('arm-smmu-v3: device has entered Service Failure Mode!');
    expect(log.some((l) => l.includes('CMDQ error'))).toBe(true);
    expect(q.gerror & GERROR_SFM_ERR).toBe(GERROR_SFM_ERR);
  });
});
