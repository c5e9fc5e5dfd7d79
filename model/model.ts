/**
 * The reference model of the ATS / ATC-timeout / reset / quarantine protocol: what the series
 * intends, with every operation one atomic transition. Pure functions; imports nothing.
 *
 *   VARIABLES devs, recoveryCnt, mapped
 *   Quarantine severity: none < resetting < reset_failed < broken
 *
 * One exception to atomicity: under the series a timeout's report to the core is queued work
 * (P11), so the quarantine it asks for lands as a step of its own (Report) some time after the
 * timeout and before the system quiesces (see roundSeqs).
 */

export type Quarantine = 'none' | 'resetting' | 'reset_failed' | 'broken';
const SEVERITY: Record<Quarantine, number> = { none: 0, resetting: 1, reset_failed: 2, broken: 3 };

export interface DevState {
  /** The domain the group keeps (group->domain), also while blocked. */
  readonly domain: number;
  readonly quarantine: Quarantine;
  /** The driver's own fence: ATS refused until a reset that works. */
  readonly atsBroken: boolean;
  /** ATS effectively on: enabled at the device and EATS set in every STE. */
  readonly atsOn: boolean;
  /** Answers ATC invalidations. */
  readonly responsive: boolean;
  /** Still on the bus; a removed device is canonical (no domain, nothing on). */
  readonly present: boolean;
  /** A timeout's broken report is queued and not yet handled (broken_pending). */
  readonly brokenPending: boolean;
}

export interface State {
  readonly devs: readonly DevState[];
  /** Per group (one device per group here). */
  readonly recoveryCnt: readonly number[];
  /** Per domain: the mapped IOVAs, ascending. */
  readonly mapped: readonly (readonly number[])[];
}

export interface Consts {
  /** ATS usable per device (see constsOf). */
  readonly ats: readonly boolean[];
  /** The IOMMU probe succeeded (see constsOf); an unprobed device is GONE from the start. */
  readonly probed: readonly boolean[];
  /** The PF of each VF, else null: a PF's removal takes its VFs with it. */
  readonly pf: readonly (number | null)[];
  /** Some reset method can actually reset the function (see constsOf). */
  readonly resettable: readonly boolean[];
  readonly domains: number;
  readonly iovas: number;
  /**
   * 'core': the series (v4): the core quarantines a broken device until a reset.
   * 'driver': v4-minimal: only the driver fences ATS, an attach may turn it back on, and a
   * timed-out batch fences every ATS device in it.
   */
  readonly design: Design;
}

export type Design = 'core' | 'driver';

/** A PCI function as the topology describes it. */
export interface FunctionSpec {
  readonly ats: boolean;
  readonly pf?: number;
  readonly noAts?: boolean;
  readonly quirk?: boolean;
  readonly flr?: boolean;
  readonly acpiRst?: 'works' | 'fails';
  readonly busReset?: boolean;
  readonly afFlr?: boolean;
  readonly pmReset?: boolean;
  readonly cxlBus?: boolean;
  /** Its DMA can carry the RID of this earlier function (a DMA alias). */
  readonly dmaAliasOf?: number;
}

// AtsSupported(d) == capability present, and no no-ATS quirk on d nor, for a VF, on its PF.
// Probed(d)       == ¬Alias(d) ∧ ¬(AtsSupported(d) ∧ d is a VF ∧ ¬(AtsSupported(PF) ∧ Probed(PF))):
//                    a DMA alias of an earlier, probed function claims that function's stream
//                    IDs, and the SMMU refuses a stream ID two masters claim; a VF's STU is its
//                    PF's, which only a probed PF that uses ATS has; the probe fails rather than
//                    the attach. (An alias's target is never a VF nor an alias itself, so it is
//                    probed; a PF, never a VF, is probed unless it is an alias.)
// Resettable(d)   == a device-specific quirk, a working ACPI _RST, FLR, AF FLR, a PM reset or a
//                    bus reset applies (below a CXL port that masks it, cxl_bus unmasks it).
export function constsOf(
  fns: readonly FunctionSpec[],
  domains: number,
  iovas: number,
  design: Design = 'core',
): Consts {
  const own = fns.map((f) => f.ats && !f.noAts);
  const ats = fns.map((f, d) => own[d]! && (f.pf === undefined || !fns[f.pf]!.noAts));
  const alias = fns.map((f) => f.dmaAliasOf !== undefined);
  const probed = fns.map(
    (f, d) => !alias[d]! && !(ats[d]! && f.pf !== undefined && !(ats[f.pf]! && !alias[f.pf]!)),
  );
  const resettable = fns.map(
    (f) =>
      (f.quirk ?? false) ||
      f.acpiRst === 'works' ||
      (f.flr ?? true) ||
      (f.afFlr ?? false) ||
      (f.pmReset ?? false) ||
      (f.busReset ?? false),
  );
  return { ats, probed, pf: fns.map((f) => f.pf ?? null), resettable, domains, iovas, design };
}

export type ModelOp =
  | { readonly kind: 'map'; readonly domain: number; readonly iova: number }
  | { readonly kind: 'unmap'; readonly domain: number; readonly iova: number }
  | { readonly kind: 'attach'; readonly dev: number; readonly domain: number }
  | { readonly kind: 'reset'; readonly dev: number; readonly outcome: 'ok' | 'fail' }
  /**
   * AER recovery: an uncorrectable error, recovered by a reset of the device's Port. The spec
   * makes no exception for it: a reset, fenced like any other, that applies whatever reset
   * methods the function has.
   */
  | { readonly kind: 'aer'; readonly dev: number; readonly outcome: 'ok' | 'fail' }
  | { readonly kind: 'resetPrepare'; readonly dev: number }
  /** `byPort`: the reset is the Port's (AER), so it resets even a function with no method. */
  | {
      readonly kind: 'resetDone';
      readonly dev: number;
      readonly outcome: 'ok' | 'fail';
      readonly byPort?: boolean;
    }
  | { readonly kind: 'dma'; readonly dev: number; readonly iova: number }
  | { readonly kind: 'hang'; readonly dev: number }
  | { readonly kind: 'unplug'; readonly dev: number }
  | { readonly kind: 'probe'; readonly dev: number }
  | { readonly kind: 'gerror' }
  /** The broken worker handles a queued report: not an operation, a step of the core's own. */
  | { readonly kind: 'report'; readonly dev: number };

// Init == every probed device on domain 0 with ATS on where supported; domain 0 maps 0..iovas-1.
export function init(c: Consts): State {
  return {
    devs: c.ats.map((ats, d) =>
      c.probed[d]
        ? {
            domain: 0,
            quarantine: 'none',
            atsBroken: false,
            atsOn: ats,
            responsive: true,
            present: true,
            brokenPending: false,
          }
        : GONE,
    ),
    recoveryCnt: c.ats.map(() => 0),
    mapped: Array.from({ length: c.domains }, (_, d) =>
      d === 0 ? Array.from({ length: c.iovas }, (_, i) => i) : [],
    ),
  };
}

const setDev = (s: State, d: number, f: (x: DevState) => DevState): State => ({
  ...s,
  devs: s.devs.map((x, i) => (i === d ? f(x) : x)),
});
const setCnt = (s: State, d: number, f: (n: number) => number): State => ({
  ...s,
  recoveryCnt: s.recoveryCnt.map((n, i) => (i === d ? f(n) : n)),
});

// Map(dom, iova) == mapped' = mapped ∪ {iova}
function map(s: State, dom: number, iova: number): State {
  const m = s.mapped[dom]!;
  if (m.includes(iova)) return s;
  return { ...s, mapped: s.mapped.map((x, i) => (i === dom ? [...x, iova].sort((a, b) => a - b) : x)) };
}

// BreakIfSilent(d) == an ATC invalidation sent to a device that no longer answers: the driver
// finds it and fences ATS (atsBroken); under 'core' it also reports it to the core, which
// quarantines it later (Report).
function breakIfSilent(c: Consts, s: State, d: number): State {
  const x = s.devs[d]!;
  if (x.responsive) return s;
  return fence(c, s, d);
}

function fence(c: Consts, s: State, d: number): State {
  const fenced = setDev(s, d, (y) => ({ ...y, atsBroken: true, atsOn: false }));
  if (c.design === 'driver') return fenced;
  return setDev(fenced, d, (y) => ({ ...y, brokenPending: true }));
}

// Report(d) == the core quarantines a reported device as broken (severity only grows); nothing
// when no report is pending (a reset that worked neutralised it, P11).
function report(s: State, d: number): State {
  const x = s.devs[d]!;
  if (!x.brokenPending) return s;
  const t = setDev(s, d, (y) => ({ ...y, quarantine: 'broken', brokenPending: false }));
  return x.quarantine === 'none' ? setCnt(t, d, (n) => n + 1) : t;
}

// Unmap(dom, iova) == the IOVA goes; every device on dom with ATS on gets its ATC invalidated
// before the page can be reused. Under 'driver', a timeout also fences the healthy ATS devices
// that shared its batch: each subset of them is allowed (see below).
function unmap(c: Consts, s: State, dom: number, iova: number): State[] {
  if (!s.mapped[dom]!.includes(iova)) return [s];
  let t: State = { ...s, mapped: s.mapped.map((x, i) => (i === dom ? x.filter((v) => v !== iova) : x)) };
  const invalidated: number[] = [];
  t.devs.forEach((x, d) => {
    if (x.domain === dom && x.quarantine === 'none' && x.atsOn) invalidated.push(d);
  });
  for (const d of invalidated) t = breakIfSilent(c, t, d);
  if (c.design !== 'driver') return [t];
  // A silent device on dom may be in the batch even while an attach is turning its ATS back on.
  const silent = s.devs.some(
    (x, d) => x.domain === dom && !x.responsive && c.ats[d] && x.quarantine === 'none',
  );
  if (!silent) return [t];
  // Which healthy devices share the failed batch depends on batching and on attaches moving
  // them between domains meanwhile: any of those with ATS on may be fenced with it.
  const bystanders = t.devs.flatMap((x, d) => (x.atsOn && x.responsive ? [d] : []));
  return subsets(bystanders).map((blamed) => blamed.reduce((u, d) => fence(c, u, d), t));
}

function subsets<T>(xs: readonly T[]): T[][] {
  return xs.reduce<T[][]>((acc, x) => [...acc, ...acc.map((a) => [...a, x])], [[]]);
}

// Attach(d, dom) == nothing when the group is on dom already; refused while the group recovers;
// else ATS follows support and the fence, and the ATC is flushed on the way (which finds a
// silent device). Under 'driver' the attach turns a fenced device's ATS back on (a new episode).
function attach(c: Consts, s: State, d: number, dom: number): State {
  if (s.devs[d]!.domain === dom || s.recoveryCnt[d]! > 0) return s;
  const x = s.devs[d]!;
  const retry = c.design === 'driver';
  const atsOn = c.ats[d]! && (retry || !x.atsBroken);
  const atsBroken = retry && atsOn ? false : x.atsBroken;
  const t = setDev(s, d, (y) => ({ ...y, domain: dom, atsOn, atsBroken }));
  return atsOn || x.atsOn ? breakIfSilent(c, t, d) : t;
}

// ResetPrepare(d) == the reset fence: block the device (turning ATS off flushes the ATC first);
// a device already quarantined stays as it is. Devices without ATS are not fenced.
function resetPrepare(c: Consts, s: State, d: number): State {
  if (!c.ats[d]) return s;
  const x = s.devs[d]!;
  if (x.quarantine !== 'none') return s;
  const s1 = x.atsOn ? breakIfSilent(c, s, d) : s;
  if (s1.devs[d]!.quarantine !== 'none') return s1;
  // Under 'driver' the fence lives in the invalidation entries, which the blocking domain drops.
  const atsBroken = c.design === 'driver' ? false : s1.devs[d]!.atsBroken;
  return setCnt(
    setDev(s1, d, (y) => ({ ...y, quarantine: 'resetting', atsOn: false, atsBroken })),
    d,
    (n) => n + 1,
  );
}

// ResetDone(d, ok) == a working reset clears the device and lifts every quarantine;
// ResetDone(d, fail) == the device stays blocked, as reset_failed or worse;
// on a device no method can reset, nothing was reset: the reset's own fence is lifted, a
// quarantine stays. A reset by the device's Port (byPort) resets any function.
function resetDone(c: Consts, s: State, d: number, outcome: 'ok' | 'fail', byPort = false): State {
  if (!c.resettable[d] && !byPort) return revertPrepare(c, s, d);
  if (!c.ats[d]) return outcome === 'ok' ? setDev(s, d, (x) => ({ ...x, responsive: true })) : s;
  const x = s.devs[d]!;
  if (outcome === 'ok') {
    const t = setDev(s, d, (y) => ({
      ...y,
      quarantine: 'none',
      atsBroken: false,
      atsOn: true,
      responsive: true,
      brokenPending: false,
    }));
    return x.quarantine === 'none' ? t : setCnt(t, d, (n) => n - 1);
  }
  const q: Quarantine = SEVERITY[x.quarantine] >= SEVERITY.reset_failed ? x.quarantine : 'reset_failed';
  const t = setDev(s, d, (y) => ({ ...y, quarantine: q, atsOn: false }));
  return x.quarantine === 'none' ? setCnt(t, d, (n) => n + 1) : t;
}

function revertPrepare(c: Consts, s: State, d: number): State {
  const x = s.devs[d]!;
  if (x.quarantine !== 'resetting') return s;
  const t = setDev(s, d, (y) => ({ ...y, quarantine: 'none', atsOn: c.ats[d]! && !y.atsBroken }));
  return setCnt(t, d, (n) => n - 1);
}

// Hang(d) == responsive' = FALSE
const hang = (s: State, d: number): State => setDev(s, d, (x) => ({ ...x, responsive: false }));

/** What a removed device looks like: nothing left to quarantine, nothing on. */
export const GONE: DevState = {
  domain: -1,
  quarantine: 'none',
  atsBroken: false,
  atsOn: false,
  responsive: true,
  present: false,
  brokenPending: false,
};

// Unplug(d) == the device and its VFs leave; their groups' recovery counts drop what they held.
const unplug = (c: Consts, s: State, d: number): State =>
  c.pf.reduce(
    (t, pf, vf) => (pf === d ? unplug(c, t, vf) : t),
    setCnt(
      setDev(s, d, () => GONE),
      d,
      () => 0,
    ),
  );

// Next == one operation, atomically: the first of the states it may lead to.
export function next(c: Consts, s: State, op: ModelOp): State {
  if ('dev' in op && op.kind !== 'dma' && !s.devs[op.dev]!.present) return s;
  return op.kind === 'unmap' ? unmap(c, s, op.domain, op.iova)[0]! : step(c, s, op);
}

// Nexts == every state one operation may lead to (more than one only where the design leaves
// a choice to the implementation). DMA changes no protocol state (its safety is a property).
export function nexts(c: Consts, s: State, op: ModelOp): State[] {
  // Operations on a device that is gone change nothing (the kernel returns -ENODEV or no-ops).
  if ('dev' in op && op.kind !== 'dma' && !s.devs[op.dev]!.present) return [s];
  if (op.kind === 'unmap') return unmap(c, s, op.domain, op.iova);
  return [step(c, s, op)];
}

function step(c: Consts, s: State, op: Exclude<ModelOp, { kind: 'unmap' }>): State {
  switch (op.kind) {
    case 'map':
      return map(s, op.domain, op.iova);
    case 'attach':
      return attach(c, s, op.dev, op.domain);
    case 'reset':
      return resetDone(c, resetPrepare(c, s, op.dev), op.dev, op.outcome);
    case 'aer':
      // Aer(d, o) == Reset(d, o) by the Port: the spec asks the same fence of every reset
      return resetDone(c, resetPrepare(c, s, op.dev), op.dev, op.outcome, true);
    case 'resetPrepare':
      return resetPrepare(c, s, op.dev);
    case 'resetDone':
      return resetDone(c, s, op.dev, op.outcome, op.byPort ?? false);
    case 'dma':
      return s;
    case 'hang':
      return hang(s, op.dev);
    case 'unplug':
      return unplug(c, s, op.dev);
    case 'probe':
      return s; // Probe(d) == UNCHANGED: asking which resets exist resets nothing
    case 'gerror':
      // Gerror == UNCHANGED: an EVTQ/PRIQ/MSI abort is logged and acknowledged; SFM kills the
      // SMMU but changes no device, group or mapping at that moment. What the dead SMMU then
      // does to later operations the model does not describe: a known limit (witnesses.ts).
      return s;
    case 'report':
      return report(s, op.dev);
  }
}

/** The reports still pending in `s`, as the steps that handle them (the worker runs them all). */
export function settleSteps(s: State): ModelOp[] {
  return s.devs.flatMap((x, dev): ModelOp[] => (x.brokenPending ? [{ kind: 'report', dev }] : []));
}

// Settle == the system quiesces: every pending report is handled.
export function settle(c: Consts, s: State): State {
  return settleSteps(s).reduce((t, op) => next(c, t, op), s);
}

/**
 * Round(ops) == some interleaving of these sequences, then Settle: each operation's atomic
 * steps, and, for every device that may time out in the round (silent at its start or hung by
 * one of its operations), one run of the broken worker, which may come anywhere.
 */
export function roundSeqs(c: Consts, before: State, ops: readonly ModelOp[]): ModelOp[][] {
  const seqs = ops.map(atomicSteps);
  if (c.design === 'driver') return seqs;
  const reporters = before.devs.flatMap((x, dev): ModelOp[] =>
    x.present && c.ats[dev] && (!x.responsive || ops.some((o) => o.kind === 'hang' && o.dev === dev))
      ? [{ kind: 'report', dev }]
      : [],
  );
  return [...seqs, ...reporters.map((r) => [r])];
}

/** Named invariants of the model itself (checked by the model's own tests). */
export const invariants: Record<string, (c: Consts, s: State) => boolean> = {
  RecoveryCntCountsBlocked: (_c, s) =>
    s.devs.every((x, d) => s.recoveryCnt[d] === (x.quarantine === 'none' ? 0 : 1)),
  NoAtsWhileBroken: (_c, s) => s.devs.every((x) => !(x.atsBroken && x.atsOn)),
  NoAtsWhileQuarantined: (_c, s) => s.devs.every((x) => x.quarantine === 'none' || !x.atsOn),
  ReportOnlyWhileFenced: (_c, s) => s.devs.every((x) => !x.brokenPending || x.atsBroken),
  AtsOnlyWhereSupported: (c, s) => s.devs.every((x, d) => !x.atsOn || c.ats[d]!),
};

/**
 * The atomic transitions one operation is made of: a reset is its prepare, then its done; so is
 * an AER recovery (its done by the Port).
 */
export function atomicSteps(op: ModelOp): ModelOp[] {
  if (op.kind === 'reset') {
    return [
      { kind: 'resetPrepare', dev: op.dev },
      { kind: 'resetDone', dev: op.dev, outcome: op.outcome },
    ];
  }
  if (op.kind === 'aer') {
    return [
      { kind: 'resetPrepare', dev: op.dev },
      { kind: 'resetDone', dev: op.dev, outcome: op.outcome, byPort: true },
    ];
  }
  return [op];
}

/** All interleavings of the operations' atomic steps that keep each operation's own order. */
export function interleavings<T>(seqs: readonly (readonly T[])[]): T[][] {
  const live = seqs.filter((q) => q.length > 0);
  if (live.length === 0) return [[]];
  const out: T[][] = [];
  live.forEach((q, i) => {
    const rest = live.map((r, j) => (j === i ? r.slice(1) : r));
    for (const tail of interleavings(rest)) out.push([q[0]!, ...tail]);
  });
  return out;
}

export function equal(a: State, b: State): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
