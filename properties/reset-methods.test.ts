/**
 * The af_flr, pm and cxl_bus reset methods (pci_reset_fn_methods[] order, probe mode, IOMMU
 * fence, P04's result) and AER recovery as a reset trigger, on hand-written scenarios and on
 * generated sets of reset methods.
 */
import { fc, test } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import type { SimEvent } from '../impl/events.ts';
import { BLOCKED_NO, BLOCKED_RESET_FAILED } from '../impl/kernel.ts';
import { type DeviceSpec, fmtOp, type Op, type System } from '../impl/system.ts';
import { Variant } from '../impl/variants.ts';
import { constsOf, init, next, settle } from '../model/model.ts';
import { fmtTopology } from '../reports/counterexample.ts';
import { parseCounterexample } from './counterexample-file.ts';
import { type RunResult, runScenario } from './runner.ts';
import type { Scenario } from './scenario.ts';
import { oneDevice } from './witnesses/witnesses.ts';

const v4 = Variant.parse('v4');

interface Run {
  readonly r: RunResult;
  /** Trace labels of the scenario rounds (probe-time steps left out). */
  readonly labels: readonly string[];
  readonly events: readonly SimEvent[];
  readonly sys: System;
}

function run(devices: readonly DeviceSpec[], rounds: readonly (readonly Op[])[], v = v4, iovas = 1): Run {
  const events: SimEvent[] = [];
  let sys: System | null = null;
  let setupDone = false;
  const s: Scenario = { topology: oneDevice({ devices, iovas }), rounds, choices: [] };
  const r = runScenario(s, v, {
    trace: true,
    onSystem: (x) => {
      sys = x;
      x.k.ev.on((e) => {
        if (setupDone) events.push(e);
      });
      // The first scenario round starts once setup (probe, map, attach) is quiescent.
      const setup = x.setup.bind(x);
      x.setup = () => {
        const end = setup();
        setupDone = true;
        return end;
      };
    },
  });
  const from = r.roundStarts[0] ?? Infinity;
  const labels = r.trace.filter((t) => t.step > from).map((t) => t.label);
  return { r, labels, events, sys: sys! };
}

const props = (r: RunResult) => r.violations.map((v) => v.property);
const blockedEvents = (x: Run) => x.events.filter((e) => e.kind === 'blocked');
const resetOk = (x: Run) => x.events.some((e) => e.kind === 'endpointReset' && e.ok);

const reset = (outcome: 'ok' | 'fail' = 'ok'): Op => ({ kind: 'reset', cpu: 0, dev: 0, outcome });
const probe: Op = { kind: 'probe', cpu: 0, dev: 0 };
const aer = (outcome: 'ok' | 'fail' = 'ok'): Op => ({ kind: 'aer', cpu: 0, dev: 0, outcome });
const quarantine: Op[][] = [[{ kind: 'hang', dev: 0 }], [{ kind: 'unmap', cpu: 0, domain: 0, iova: 0 }]];

/** Each new method as a function's only one (no FLR), and the step that is its reset. */
const ONLY: readonly { name: string; dev: DeviceSpec; label: string }[] = [
  { name: 'af_flr', dev: { ats: true, sids: 1, flr: false, afFlr: true }, label: 'dev0: initiate AF_FLR' },
  { name: 'pm', dev: { ats: true, sids: 1, flr: false, pmReset: true }, label: 'dev0: PCI_PM_CTRL = D0' },
  {
    name: 'cxl_bus',
    dev: { ats: true, sids: 1, flr: false, busReset: true, cxlBus: true },
    label: 'dev0: initiate secondary bus reset',
  },
];

describe.each(ONLY)('the $name method', ({ name, dev, label }) => {
  test('resets a healthy device under v4 with no violation', () => {
    const x = run([dev], [[reset()]]);
    expect(x.r.violations).toEqual([]);
    expect(x.labels.some((l) => l.startsWith(label))).toBe(true);
    expect(resetOk(x)).toBe(true);
    // Fenced: blocked for the reset, then unblocked.
    expect(blockedEvents(x).map((e) => (e.kind === 'blocked' ? e.to : -1))).toEqual([1, BLOCKED_NO]);
    expect(x.labels).toContain('dev0: pci_reset_function() = 0');
  });

  test('lifts the quarantine of a hung device under v4 (done() gets 0)', () => {
    const x = run([dev], [...quarantine, [reset()]], v4, 2);
    expect(x.r.violations).toEqual([]);
    expect(x.sys.k.gdevs[0]!.blocked).toBe(BLOCKED_NO);
    expect(x.labels).toContain('dev0: broken_pending = false');
  });

  test('a failed reset through it keeps the device blocked under v4, not with done-ignores-result (P04)', () => {
    const x = run([dev], [[reset('fail')]]);
    expect(x.r.violations).toEqual([]);
    expect(x.sys.k.gdevs[0]!.blocked).toBe(BLOCKED_RESET_FAILED);
    const kept = 'dev0: Reset may have been skipped. Keep it blocked conservatively'; // pci_dev_wait(): -ENOTTY
    expect(x.r.log.map((l) => l.text)).toContain(kept);
    const bug = run([dev], [[reset('fail')]], Variant.parse('v4+done-ignores-result'));
    expect(bug.r.log.map((l) => l.text)).not.toContain(kept);
    expect(bug.sys.k.gdevs[0]!.blocked).not.toBe(BLOCKED_RESET_FAILED);
    expect(props(bug.r)).toContain('refinement');
  });

  test.each(['v4', 'v4+probe-blocks-iommu', 'mainline'])('probing it does not touch the IOMMU (%s)', (v) => {
    const x = run([dev], [[probe]], Variant.parse(v));
    expect(x.r.violations).toEqual([]);
    expect(blockedEvents(x)).toEqual([]);
    expect(x.labels.filter((l) => l.includes('group0 mutex'))).toEqual([]);
    expect(x.labels).toContain('dev0: 1 reset method(s) supported');
  });

  test(`${name === 'cxl_bus' ? 'nests' : 'does not nest'} its fence`, () => {
    const x = run([dev], [[reset()]]);
    expect(x.labels.includes('nested reset: depth++')).toBe(name === 'cxl_bus');
  });
});

test('control: probing the bus method does touch the IOMMU under v4+probe-blocks-iommu (P01)', () => {
  const bus: DeviceSpec = { ats: true, sids: 1, flr: false, busReset: true };
  expect(blockedEvents(run([bus], [[probe]]))).toEqual([]);
  const x = run([bus], [[probe]], Variant.parse('v4+probe-blocks-iommu'));
  expect(blockedEvents(x).length).toBe(2);
  expect(props(x.r)).toContain('reset-fence-only-in-reset');
});

test('below a CXL port with SBR masked, the bus method answers -ENOTTY and cxl_bus unmasks it', () => {
  const x = run([ONLY[2]!.dev], [[reset()]]);
  const unmask = x.labels.indexOf('dev0: CXL port: PCI_DVSEC_CXL_PORT_CTL |= UNMASK_SBR');
  const sbr = x.labels.indexOf('dev0: initiate secondary bus reset');
  const remask = x.labels.indexOf('dev0: CXL port: PCI_DVSEC_CXL_PORT_CTL restored (SBR masked)');
  expect(unmask).toBeGreaterThanOrEqual(0);
  expect(sbr).toBeGreaterThan(unmask);
  expect(remask).toBeGreaterThan(sbr);
  expect(x.sys.k.pdevs[0]!.cxlSbrMasked).toBe(true);
  // Without busReset the nested bus reset answers -ENOTTY: done(-ENOTTY), the P04 FIXME.
  const alone = run([{ ats: true, sids: 1, flr: false, cxlBus: true }], [[reset()]]);
  expect(alone.sys.k.gdevs[0]!.blocked).toBe(BLOCKED_RESET_FAILED);
  expect(props(alone.r)).toEqual(['refinement']);
});

/** A function's reset methods, drawn: every combination of the seven. */
const methodsArb = fc.record({
  quirk: fc.boolean(),
  acpiRst: fc.constantFrom<'works' | 'fails' | undefined>(undefined, 'works', 'fails'),
  flr: fc.boolean(),
  afFlr: fc.boolean(),
  pmReset: fc.boolean(),
  busReset: fc.boolean(),
  cxlBus: fc.boolean(),
});
type Methods = typeof methodsArb extends fc.Arbitrary<infer T> ? T : never;

const toDevice = (m: Methods): DeviceSpec => ({
  ats: true,
  sids: 1,
  ...(m.quirk ? { quirk: true } : {}),
  ...(m.acpiRst ? { acpiRst: m.acpiRst } : {}),
  flr: m.flr,
  ...(m.afFlr ? { afFlr: true } : {}),
  ...(m.pmReset ? { pmReset: true } : {}),
  ...(m.busReset ? { busReset: true } : {}),
  ...(m.cxlBus ? { cxlBus: true } : {}),
});

/** The reset step each method makes, as the trace shows it (the quirk's is an FLR). */
const RESET_STEP: readonly [RegExp, string][] = [
  [/^dev0: initiate FLR$/, 'FLR'],
  [/^dev0: initiate ACPI _RST$/, 'ACPI _RST'],
  [/^dev0: initiate AF_FLR$/, 'AF_FLR'],
  [/^dev0: PCI_PM_CTRL = D0/, 'pm'],
  [/^dev0: initiate secondary bus reset$/, 'bus'],
];

/** Mainline's order, each method's own -ENOTTY: the first one that resets, by its step. */
function expectedReset(m: Methods): string | null {
  if (m.quirk) return 'FLR';
  if (m.acpiRst === 'works') return 'ACPI _RST';
  if (m.flr) return 'FLR';
  if (m.afFlr) return 'AF_FLR';
  if (m.pmReset) return 'pm';
  if (m.busReset) return 'bus'; // by the bus method, or (SBR masked) by cxl_bus over it
  return null;
}

/** How many methods probe as supported (pci_init_reset_methods()). */
const expectedSupported = (m: Methods): number =>
  [m.quirk, m.acpiRst !== undefined, m.flr, m.afFlr, m.pmReset, m.busReset && !m.cxlBus, m.cxlBus].filter(
    Boolean,
  ).length;

describe('generated sets of reset methods, under v4', () => {
  test.prop([methodsArb], { numRuns: 60 })(
    'the first method that applies resets; -ENOTTY falls through in mainline order',
    (m) => {
      const x = run([toDevice(m)], [[reset()]]);
      const first = x.labels.flatMap((l) => RESET_STEP.filter(([re]) => re.test(l)).map(([, n]) => n))[0];
      expect(first ?? null).toBe(expectedReset(m));
      // Only the one reset happened at the device.
      expect(x.events.filter((e) => e.kind === 'endpointReset').length).toBe(expectedReset(m) ? 1 : 0);
      // cxl_bus is reached when nothing before it reset (the bus method is masked below it).
      const cxlReached = m.cxlBus && (expectedReset(m) === null || expectedReset(m) === 'bus');
      expect(x.labels.includes('dev0: CXL port: PCI_DVSEC_CXL_PORT_CTL |= UNMASK_SBR')).toBe(cxlReached);
      // Nothing resets the function, and something fenced it and said -ENOTTY: P04 keeps it
      // blocked (the known limit enotty-keeps-blocked); otherwise v4 conforms.
      const enottyInFence = m.acpiRst === 'fails' || (m.cxlBus && !m.busReset);
      expect(props(x.r)).toEqual(expectedReset(m) === null && enottyInFence ? ['refinement'] : []);
    },
  );

  test.prop([methodsArb, fc.constantFrom('v4', 'v4+probe-blocks-iommu')], { numRuns: 40 })(
    'probing counts the methods that apply; only the quirk and bus probes can fence (P01 undone)',
    (m, v) => {
      const x = run([toDevice(m)], [[probe]], Variant.parse(v));
      expect(x.labels).toContain(`dev0: ${expectedSupported(m)} reset method(s) supported`);
      const mayFence = v !== 'v4' && (m.quirk || (m.busReset && !m.cxlBus));
      expect(blockedEvents(x).length > 0).toBe(mayFence);
    },
  );
});

describe('AER recovery (pcie_do_recovery() with aer_root_reset())', () => {
  test.each(['mainline', 'v4'])(
    'resets a healthy device by a bus reset of its Port, with no IOMMU fence (%s)',
    (v) => {
      const x = run([{ ats: true, sids: 1 }], [[aer()]], Variant.parse(v));
      expect(x.r.violations).toEqual([]);
      expect(resetOk(x)).toBe(true);
      expect(x.labels).toContain("dev0's port: PCI_BRIDGE_CTL_BUS_RESET set");
      expect(blockedEvents(x)).toEqual([]);
      expect(x.labels.filter((l) => l.includes('group0 mutex'))).toEqual([]);
      expect(x.r.log.map((l) => l.text)).toContain("dev0's port: AER: device recovery successful");
      // slot_reset() restored ATS at the device
      expect(x.sys.k.pdevs[0]!.ep.atsEnabled).toBe(true);
    },
  );

  test('resets even a function with no reset method of its own', () => {
    const x = run([{ ats: true, sids: 1, flr: false }], [[aer()]]);
    expect(resetOk(x)).toBe(true);
    expect(x.r.violations).toEqual([]);
  });

  test('finding: under v4 it does not lift a quarantine (no pci_dev_reset_iommu_done())', () => {
    const x = run([{ ats: true, sids: 1 }], [...quarantine, [aer()]], v4, 2);
    expect(resetOk(x)).toBe(true);
    expect(x.sys.k.pdevs[0]!.ep.responsive).toBe(true);
    expect(x.sys.k.gdevs[0]!.blocked).toBe(3); // BLOCKED_BROKEN
    expect(props(x.r)).toEqual(expect.arrayContaining(['liveness-after-reset', 'refinement']));
    // Control: the same recovery by pci_reset_function() conforms.
    expect(run([{ ats: true, sids: 1 }], [...quarantine, [reset()]], v4, 2).r.violations).toEqual([]);
  });

  test('finding: under v4 a failed AER reset leaves the device unblocked', () => {
    const x = run([{ ats: true, sids: 1 }], [[aer('fail')]]);
    expect(x.sys.k.gdevs[0]!.blocked).toBe(BLOCKED_NO);
    expect(x.r.log.map((l) => l.text)).toContain("dev0's port: AER: device recovery failed");
    expect(props(x.r)).toEqual(['refinement']);
    expect(run([{ ats: true, sids: 1 }], [[reset('fail')]]).r.violations).toEqual([]);
  });

  test('the model: an AER recovery is a reset by the Port, whatever methods the function has', () => {
    const c = constsOf([{ ats: true, flr: false }], 2, 1);
    expect(c.resettable).toEqual([false]);
    const hung = next(c, init(c), { kind: 'hang', dev: 0 });
    const broken = settle(c, next(c, hung, { kind: 'unmap', domain: 0, iova: 0 }));
    expect(broken.devs[0]!.quarantine).toBe('broken');
    const byAer = next(c, broken, { kind: 'aer', dev: 0, outcome: 'ok' });
    expect(byAer.devs[0]).toMatchObject({ quarantine: 'none', atsOn: true, responsive: true });
    // pci_reset_function() has no method to use here: the quarantine stays.
    expect(next(c, broken, { kind: 'reset', dev: 0, outcome: 'ok' }).devs[0]!.quarantine).toBe('broken');
  });

  test('a counterexample file may hold it and the new methods; it prints', () => {
    const file = {
      variant: 'v4',
      scenario: {
        topology: oneDevice({ devices: [{ ats: true, sids: 1, afFlr: true, pmReset: true, cxlBus: true }] }),
        rounds: [[{ kind: 'aer', cpu: 0, dev: 0, outcome: 'fail' }]],
        choices: [],
      },
    };
    const parsed = parseCounterexample(JSON.stringify(file), 'x.json');
    expect(parsed.scenario.rounds[0]![0]).toEqual({ kind: 'aer', cpu: 0, dev: 0, outcome: 'fail' });
    expect(parsed.scenario.topology.devices[0]).toMatchObject({ afFlr: true, pmReset: true, cxlBus: true });
    const bad = { ...file, scenario: { ...file.scenario, rounds: [[{ kind: 'aer', cpu: 0, dev: 0 }]] } };
    expect(() => parseCounterexample(JSON.stringify(bad), 'x.json')).toThrow(/outcome/);
    expect(fmtOp({ kind: 'aer', cpu: 1, dev: 0, outcome: 'fail' })).toBe(
      'cpu1: AER recovery of dev0 (uncorrectable fatal error), bus reset fails',
    );
    expect(fmtTopology(parsed.scenario.topology)[1]).toContain(
      'AF FLR, PM reset (D3hot->D0), below a CXL port that masks SBR',
    );
  });
});
