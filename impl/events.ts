/**
 * What the hardware and the kernel code report to observers. Impl never reads observers back:
 * events are one-way, so checking cannot change a run.
 */
export type SimEvent =
  /** A DMA write reached memory page `page`; the SMMU accepted it for `steDomain`. */
  | { kind: 'dmaWrite'; dev: number; iova: number; page: number; viaAtc: boolean; steDomain: number }
  /**
   * A CMD_SYNC failed with CERROR_ATC_INV_SYNC; `pos` names the SYNC (absolute queue position);
   * `sentAt[i]` is when the invalidation to `devs[i]` that timed out was sent.
   */
  | {
      kind: 'syncAtcError';
      pos: number;
      prod: number;
      devs: number[];
      sentAt: number[];
      /** The queue, when not the SMMU's own (a tegra241 VCMDQ: 'vcmdq0'); positions are per queue. */
      cmdq?: string;
    }
  /** An issuer's CMD_SYNC poll returned: 0, -ETIMEDOUT or -EIO (`prod` is the SYNC's slot pointer). */
  | { kind: 'syncReturn'; prod: number; ret: number; cmdq?: string }
  /** gdev->blocked changed. */
  | { kind: 'blocked'; dev: number; from: number; to: number }
  /** The endpoint finished a reset (FLR) that worked, or one that did not. */
  | { kind: 'endpointReset'; dev: number; ok: boolean }
  | { kind: 'hang'; dev: number }
  /** pci_reset_function() started or ended for the device. */
  | { kind: 'resetFunction'; dev: number; running: boolean }
  | { kind: 'warn'; what: string }
  /** The driver fenced the device's ATS (cleared EATS) after an ATC invalidation timeout. */
  | { kind: 'atsFenced'; dev: number }
  /** An STE write turned EATS on for one of the device's stream IDs (it was off). */
  | { kind: 'eatsEnabled'; dev: number }
  /** An ATS Invalidate Request reached the function during its FLR: it is lost. */
  | { kind: 'invalidationIntoFlr'; dev: number };

export class Events {
  private readonly listeners: Array<(e: SimEvent) => void> = [];
  on(fn: (e: SimEvent) => void): void {
    this.listeners.push(fn);
  }
  emit(e: SimEvent): void {
    for (const l of this.listeners) l(e);
  }
}
