/**
 * A PCIe endpoint with an ATC: ATS Enable, translation requests that fill the ATC, DMA that
 * uses it, invalidation requests it answers (or not, once hung), and FLR.
 */
import type { Events } from '../events.ts';
import { type Machine, type Proc, Wait } from '../sim/machine.ts';
import type { Cmd } from './cmd.ts';
import type { Smmu } from './smmu.ts';

export type FlrOutcome = 'ok' | 'fail';

/** How long a working FLR takes at the device (within the 100 ms the spec allows). */
export const FLR_DEVICE_US = 20_000;

interface PendingInv {
  cmd: Cmd;
  complete: () => void;
}

export class Endpoint {
  atsEnabled = false;
  /** IOVA → physical page, filled by ATS translation completions. */
  readonly atc = new Map<number, number>();
  /** Answers ATS invalidation requests; false once hung, until a reset that works. */
  responsive = true;
  inFlr = false;
  /** Answers config reads (false while an FLR is in progress). */
  ready = true;
  /** Still on the bus; a removed function answers nothing and does no DMA. */
  present = true;
  private pending: PendingInv[] = [];
  private flrDoneAt = -1;

  constructor(
    private readonly m: Machine,
    private readonly events: Events,
    private readonly smmu: Smmu,
    readonly dev: number,
    readonly sids: readonly number[],
    readonly atsCapable: boolean,
  ) {
    m.agent(`EP${dev}`, this.agent());
  }

  answersInvalidations(): boolean {
    return this.responsive && !this.inFlr;
  }

  /** An ATS Invalidate Request arrives; one sent into an FLR is lost and never completes. */
  receiveInvalidation(cmd: Cmd, complete: () => void): void {
    // A removed function: the request ends in Unsupported Request, which counts as completed.
    if (!this.present) return complete();
    if (this.inFlr) {
      this.events.emit({ kind: 'invalidationIntoFlr', dev: this.dev });
      return;
    }
    this.pending.push({ cmd, complete });
  }

  /** Surprise or orderly removal from the bus. */
  remove(): void {
    this.present = false;
    this.atsEnabled = false;
    this.atc.clear();
  }

  hang(): void {
    this.responsive = false;
    this.events.emit({ kind: 'hang', dev: this.dev });
  }

  /**
   * Config write of Initiate FLR: ATS Enable clears and pending invalidations are lost. An FLR
   * that works completes in FLR_DEVICE_US; one that fails leaves the device not ready (as if
   * disconnected) until a later reset works, so the kernel's ready poll times out.
   */
  startFlr(outcome: FlrOutcome): void {
    this.inFlr = true;
    this.ready = false;
    this.atsEnabled = false;
    this.pending = [];
    this.flrDoneAt = -1;
    if (outcome === 'fail') {
      this.events.emit({ kind: 'endpointReset', dev: this.dev, ok: false });
      return;
    }
    const doneAt = this.m.now + FLR_DEVICE_US;
    this.flrDoneAt = doneAt;
    const m = this.m;
    // The device's own reset timer: a hardware agent armed for this FLR; a new FLR restarts it.
    m.agent(
      `EP${this.dev} FLR`,
      (function* (ep: Endpoint): Proc {
        yield new Wait(() => m.now >= doneAt, doneAt, true, 'FLR in progress');
        if (ep.flrDoneAt !== doneAt) return;
        ep.finishFlr();
        yield 'FLR completes';
      })(this),
    );
  }

  private finishFlr(): void {
    this.inFlr = false;
    this.ready = true;
    this.atc.clear();
    this.responsive = true;
    this.events.emit({ kind: 'endpointReset', dev: this.dev, ok: true });
  }

  private *agent(): Proc {
    const work = () => this.pending.length > 0 && this.answersInvalidations();
    const w = new Wait(work, -1, true, 'invalidations');
    for (;;) {
      while (!work()) yield w;
      const inv = this.pending.shift()!;
      if (inv.cmd.op === 'ATC_INV') {
        if (inv.cmd.all) this.atc.clear();
        else this.atc.delete(inv.cmd.iova);
      }
      inv.complete();
      yield 'ATC invalidation completes';
    }
  }

  /** One DMA write to `iova` through the ATC when ATS is enabled, else untranslated. */
  *dma(iova: number): Proc {
    yield `DMA write iova ${iova}`;
    if (this.inFlr || !this.present) return;
    const sid = this.sids[0]!;
    if (this.atsEnabled) {
      let page = this.atc.get(iova);
      while (page === undefined) {
        const tr = this.smmu.translate(sid, iova, true);
        if (tr === null) {
          yield 'ATS translation request fails';
          return;
        }
        this.atc.set(iova, tr.page);
        yield `ATS translation: iova ${iova} -> page ${tr.page} cached in ATC`;
        if (!this.atsEnabled || this.inFlr) return;
        // An invalidation completed meanwhile: a write must not use what it invalidated (PCIe
        // orders the Invalidate Completion after writes that used the old translation).
        page = this.atc.get(iova);
      }
      const acc = this.smmu.acceptsTranslated(sid);
      if (acc === null) {
        yield `translated write to page ${page} aborted by SMMU (EATS=0)`;
        return;
      }
      this.events.emit({ kind: 'dmaWrite', dev: this.dev, iova, page, viaAtc: true, steDomain: acc.domain });
      yield `translated write lands on page ${page}`;
      return;
    }
    const tr = this.smmu.translate(sid, iova, false);
    if (tr === null) {
      yield 'untranslated write faults';
      return;
    }
    this.events.emit({
      kind: 'dmaWrite',
      dev: this.dev,
      iova,
      page: tr.page,
      viaAtc: false,
      steDomain: tr.domain,
    });
    yield `untranslated write lands on page ${tr.page}`;
  }
}
