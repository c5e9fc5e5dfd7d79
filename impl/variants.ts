/**
 * Variants: a preset (which code base) plus catalog flags (each puts one bug back).
 *
 * `v.patch(n)` reads "patch n/24 of the v4 series is applied"; `v.bug(id)` reads "the catalog
 * bug `id` is put back"; `v.fix(id)` reads "the fix proposed for v4's own finding is applied"
 * (a `fix-<id>` in the name, FIXES). Kernel code tests them in the one place the patch changed,
 * so a reviewer reads the branch as the diff.
 */

export type Preset = 'mainline' | 'v4' | 'v4-minimal';
export const PRESETS: readonly Preset[] = ['mainline', 'v4', 'v4-minimal'];

/**
 * v4-minimal: the driver-only design the maintainer asks for at the end of seed 002. The driver
 * detects the timeout (P12–P16, with P24's forced sync for ATS batches), clears EATS on every
 * ATS stream ID of the timed-out batch (no per-SID retry: P19–P22, P24's retry dropped) and marks
 * those invalidation entries broken (a flag in the invs entries, not a master pointer: no P17);
 * the core is not told (no P06–P09, P11) and an attach may re-enable ATS (no P18 refusal, no P23
 * fence); an external FLR's prepare/done (P01–P05, P10) puts everything back.
 */
const MINIMAL_PATCHES: ReadonlySet<number> = new Set([1, 2, 3, 4, 5, 10, 12, 13, 14, 15, 16, 24]);

export interface FlagInfo {
  readonly id: string;
  readonly source: string;
  readonly summary: string;
}

/** Catalog rows implemented as flags so far (see ../shared/CATALOG.md for the full list). */
export const FLAGS = [
  {
    id: 'done-ignores-result',
    source: 'P04',
    summary: 'reset done unblocks the device even when the reset failed',
  },
  {
    id: 'no-reset-device-done',
    source: 'P05, P18',
    summary: 'the driver is never told of a successful reset: ats_broken stays set, ATS never comes back',
  },
  {
    id: 'stale-broken-report',
    source: 'P11',
    summary: 'a broken report from before a reset is acted on after the reset succeeded',
  },
  {
    id: 'stale-atc-timeout-bit',
    source: 'P12',
    summary: "the issuer does not clear its slot's ATC-timeout bit before reuse",
  },
  {
    id: 'atc-bit-cleared-after-publish',
    source: 'P12',
    summary:
      "the slot's ATC-timeout bit is cleared after the SMMU can see the slot, racing the handler's set",
  },
  {
    id: 'late-isr-misclassified',
    source: 'P15',
    summary:
      'the issuer does not drain CMDQ_ERR after its poll times out; a late GERROR IRQ loses the ATC timeout',
  },
  {
    id: 'full-queue-stall',
    source: 'P16',
    summary: 'a full queue is polled without draining a pending CMDQ_ERR',
  },
  {
    id: 'atc-inv-to-broken',
    source: 'P18',
    summary: 'ATC invalidations keep going to a master already marked broken',
  },
  {
    id: 'ats-reenabled-while-broken',
    source: 'P18',
    summary: 'attach re-enables ATS on a master marked broken',
  },
  {
    id: 'eats-lost-update',
    source: 'P23',
    summary: "STE writes and the broken path's EATS clear are not serialised",
  },
  {
    id: 'reset-clears-broken-midway',
    source: 'P23',
    summary: 'reset_device_done can clear ats_broken between the timeout being seen and the quarantine',
  },
  {
    id: 'async-batch-flush',
    source: 'P24 (P19)',
    summary:
      'a full ATS batch is flushed without a CMD_SYNC; its timeout surfaces at a later, unrelated sync',
  },
  {
    id: 'blame-first-sid',
    source: 'P24',
    summary: 'no per-stream-ID retry: the timeout is pinned on the first ATS stream ID of the batch',
  },
  {
    id: 'inv-during-flr',
    source: '003',
    summary: 'no IOMMU prepare/done around a reset: invalidations reach a function in the middle of FLR',
  },
  {
    id: 'unplug-leaks-recovery-cnt',
    source: 'P04',
    summary: 'removing a blocked device leaves recovery_cnt raised: the group refuses attaches forever',
  },
  {
    id: 'broken-work-uaf',
    source: 'P11, v4 changelog',
    summary:
      'teardown cancels instead of disabling the broken work: a racing report queues it on a freed gdev',
  },
  {
    id: 'master-freed-under-rcu',
    source: 'P17',
    summary: 'release frees the master without waiting for a grace period while an invalidation reads it',
  },
  {
    id: 'probe-blocks-iommu',
    source: 'P01',
    summary: 'probing reset capability runs reset prepare/done, blocking a device that is doing DMA',
  },
  {
    id: 'flr-result-dropped',
    source: 'P02',
    summary: "quirk reset methods ignore pcie_flr()'s failure and report success",
  },
  {
    id: 'enable-ats-failure-desync',
    source: '000, 001',
    summary:
      'no ATS prepare at probe and a pci_enable_ats() failure only logged: the driver counts ATS as on',
  },
  {
    id: 'vf-ats-ignores-pf-quirk',
    source: '000 (1/5)',
    summary: 'pci_ats_supported() is true for a VF whose PF is quirked to have no ATS',
  },
  {
    id: 'vf-stu-unchecked',
    source: '000 (2/5)',
    summary: "pci_prepare_ats() accepts a VF whose PF's STU differs, so enabling fails later",
  },
] as const satisfies readonly FlagInfo[];

export type FlagId = (typeof FLAGS)[number]['id'];

export interface FixInfo {
  readonly id: string;
  /** The finding it fixes: reports/findings/<finding>.md. */
  readonly finding: string;
  readonly summary: string;
}

/**
 * Fixes proposed for v4's own findings (reports/findings/, each page's "Proposed fix"): what v5
 * would change. Off in every preset; `v4+fix-<id>` turns one on, `v4-fixed` all of them.
 */
export const FIXES = [
  {
    id: 'sync-behind-failure',
    finding: 'sync-queued-behind-failure',
    summary:
      'a CMD_SYNC poll times out only after 1 s without progress of the queue, and an issuer that drained a CMDQ error ahead of its CMD_SYNC polls again',
  },
  {
    id: 'prepare-grace-period',
    finding: 'domain-join-leaves-reader-into-flr',
    summary:
      "the reset's prepare waits a grace period after blocking the device, so no invalidation still walking an older invs array of its domain reaches the function once its reset starts",
  },
  {
    id: 'sfm-skip-err',
    finding: 'sfm-drops-reported-atc-timeout',
    summary:
      'on Service Failure Mode the GERROR handler skips a pending CMDQ error (marking its ATC timeout) before acknowledging',
  },
] as const satisfies readonly FixInfo[];

export type FixId = (typeof FIXES)[number]['id'];

/** The name token of a fix: `fix-<id>`. */
export const FIX_PREFIX = 'fix-';

/** The alias for v4 with every fix of FIXES. */
export const V4_FIXED = 'v4-fixed';

/** v4 with every fix of FIXES but `id`: what a finding's own fix is checked against. */
export const v4FixedBut = (id: FixId): string =>
  ['v4', ...FIXES.filter((f) => f.id !== id).map((f) => `${FIX_PREFIX}${f.id}`)].join('+');

export class VariantError extends Error {}

export class Variant {
  private constructor(
    readonly preset: Preset,
    readonly flags: ReadonlySet<string>,
    readonly fixes: ReadonlySet<string> = new Set(),
  ) {}

  /**
   * `preset[+token...]`: a token is a catalog flag, or `fix-<id>` for a fix of FIXES; both apply
   * to v4 only, in any order and combination. `v4-fixed` is v4 with every fix.
   */
  static parse(spec: string): Variant {
    const [head, ...tokens] = spec.split('+');
    const preset = head === V4_FIXED ? 'v4' : head;
    if (!PRESETS.includes(preset as Preset)) {
      throw new VariantError(
        `unknown variant preset '${head}' (known: ${[...PRESETS, V4_FIXED].join(', ')})`,
      );
    }
    const flags = new Set<string>();
    const fixes = new Set<string>(head === V4_FIXED ? FIXES.map((x) => x.id) : []);
    for (const t of tokens) {
      if (t.startsWith(FIX_PREFIX)) {
        const id = t.slice(FIX_PREFIX.length);
        if (!FIXES.some((x) => x.id === id)) {
          throw new VariantError(
            `unknown fix '${t}' in variant '${spec}' (known: ${FIXES.map((x) => FIX_PREFIX + x.id).join(', ')})`,
          );
        }
        fixes.add(id);
      } else if (FLAGS.some((x) => x.id === t)) {
        flags.add(t);
      } else {
        throw new VariantError(
          `unknown flag '${t}' in variant '${spec}' (known: ${FLAGS.map((x) => x.id).join(', ')}; fixes: ${FIXES.map((x) => FIX_PREFIX + x.id).join(', ')})`,
        );
      }
    }
    if (preset !== 'v4' && tokens.length > 0) {
      throw new VariantError(`flags and fixes apply to v4, not to ${preset}: '${spec}'`);
    }
    return new Variant(preset as Preset, flags, fixes);
  }

  /** The canonical name, which parses back to this variant: `v4-fixed` when every fix is on. */
  get name(): string {
    const allFixed = this.preset === 'v4' && FIXES.every((x) => this.fixes.has(x.id));
    const fixes = allFixed ? [] : [...this.fixes].sort().map((id) => FIX_PREFIX + id);
    return [allFixed ? V4_FIXED : this.preset, ...fixes, ...[...this.flags].sort()].join('+');
  }

  /** Patch n/24 of "[PATCH v4] iommu/arm-smmu-v3: Quarantine device upon ATC invalidation timeout". */
  patch(n: number): boolean {
    return this.preset === 'v4' || (this.preset === 'v4-minimal' && MINIMAL_PATCHES.has(n));
  }

  /** The driver-only design of v4-minimal, where it departs from the patches. */
  get minimal(): boolean {
    return this.preset === 'v4-minimal';
  }

  /**
   * Patch n/5 of "[PATCH v4 0/5] iommu: Standardize ATS robustness and state tracking" (seed
   * 000), which the v4 preset includes: the issue takes that series' v4 as the v4 behaviour.
   */
  atsPatch(_n: number): boolean {
    return this.preset !== 'mainline';
  }

  /** A catalog bug this variant puts back. */
  bug(id: FlagId): boolean {
    return this.flags.has(id);
  }

  /** A fix proposed for one of v4's own findings (FIXES) that this variant applies. */
  fix(id: FixId): boolean {
    return this.fixes.has(id);
  }
}

export function listVariants(): string[] {
  return [...PRESETS, ...FLAGS.map((f) => `v4+${f.id}`)];
}

/** The variants with fixes of v4's findings: each fix alone, then all of them (`v4-fixed`). */
export function listFixVariants(): string[] {
  return [...FIXES.map((f) => `v4+${FIX_PREFIX}${f.id}`), V4_FIXED];
}
