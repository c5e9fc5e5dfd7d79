/**
 * Variants: a preset (which code base) plus catalog flags (each puts one bug back).
 *
 * `v.patch(n)` reads "patch n/24 of the v4 series is applied"; `v.bug(id)` reads "the catalog
 * bug `id` is put back". Kernel code tests them in the one place the patch changed, so a
 * reviewer reads the branch as the diff.
 */

export type Preset = 'mainline' | 'v4';
export const PRESETS: readonly Preset[] = ['mainline', 'v4'];

export interface FlagInfo {
  readonly id: string;
  readonly source: string;
  readonly summary: string;
}

/** Catalog rows implemented as flags so far (see ../shared/CATALOG.md for the full list). */
export const FLAGS: readonly FlagInfo[] = [
  {
    id: 'done-ignores-result',
    source: 'P04',
    summary: 'reset done unblocks the device even when the reset failed',
  },
  {
    id: 'late-isr-misclassified',
    source: 'P15',
    summary:
      'the issuer does not drain CMDQ_ERR after its poll times out; a late GERROR IRQ loses the ATC timeout',
  },
];

export type FlagId = (typeof FLAGS)[number]['id'];

export class VariantError extends Error {}

export class Variant {
  private constructor(
    readonly preset: Preset,
    readonly flags: ReadonlySet<string>,
  ) {}

  static parse(spec: string): Variant {
    const [preset, ...flags] = spec.split('+');
    if (!PRESETS.includes(preset as Preset)) {
      throw new VariantError(`unknown variant preset '${preset}' (known: ${PRESETS.join(', ')})`);
    }
    for (const f of flags) {
      if (!FLAGS.some((x) => x.id === f)) {
        throw new VariantError(
          `unknown flag '${f}' in variant '${spec}' (known: ${FLAGS.map((x) => x.id).join(', ')})`,
        );
      }
    }
    if (preset === 'mainline' && flags.length > 0) {
      throw new VariantError(`flags apply to v4, not to mainline: '${spec}'`);
    }
    return new Variant(preset as Preset, new Set(flags));
  }

  get name(): string {
    return [this.preset, ...[...this.flags].sort()].join('+');
  }

  /** Patch n/24 of "[PATCH v4] iommu/arm-smmu-v3: Quarantine device upon ATC invalidation timeout". */
  patch(_n: number): boolean {
    return this.preset === 'v4';
  }

  /** A catalog bug this variant puts back. */
  bug(id: FlagId): boolean {
    return this.flags.has(id);
  }
}

export function listVariants(): string[] {
  return [...PRESETS, ...FLAGS.map((f) => `v4+${f.id}`)];
}
