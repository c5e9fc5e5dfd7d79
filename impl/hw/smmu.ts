/**
 * The SMMUv3 as hardware: a command queue ring with PROD/CONS wrap bits, the CMDQ consumer,
 * CONS.ERR and GERROR/GERRORN, the GERROR interrupt, and the stream table (STE.EATS). Optionally
 * a tegra241 CMDQV in front of it: one more command queue (VINTF0's logical VCMDQ 0) with its own
 * ring, PROD/CONS, GERROR/GERRORN page and the CMDQV's own error interrupt.
 */
import type { Events } from '../events.ts';
import { type Irq, type Machine, type Proc, Wait } from '../sim/machine.ts';
import type { Cmd } from './cmd.ts';
import type { Endpoint } from './endpoint.ts';

export const GERROR_CMDQ_ERR = 1 << 0;
export const GERROR_EVTQ_ABT_ERR = 1 << 2;
export const GERROR_PRIQ_ABT_ERR = 1 << 3;
export const GERROR_MSI_CMDQ_ABT_ERR = 1 << 4;
export const GERROR_MSI_EVTQ_ABT_ERR = 1 << 5;
export const GERROR_MSI_PRIQ_ABT_ERR = 1 << 6;
export const GERROR_MSI_GERROR_ABT_ERR = 1 << 7;
export const GERROR_SFM_ERR = 1 << 8;
export const GERROR_ERR_MASK = 0x1fd;

/**
 * The GERROR causes other than CMDQ_ERR that a scenario can inject (SMMU_GERROR bits 2–8):
 * an Event or PRI queue write that aborted, an MSI write that aborted (for the CMD_SYNC, Event
 * queue, PRI queue or GERROR interrupt), and Service Failure Mode. CMDQ_ERR is not injected: the
 * SMMU raises it itself when a command fails (see HwCmdq.consumer).
 */
export type GerrorCause =
  | 'evtq-abort'
  | 'priq-abort'
  | 'msi-cmdq-abort'
  | 'msi-evtq-abort'
  | 'msi-priq-abort'
  | 'msi-gerror-abort'
  | 'sfm';

export const GERROR_CAUSE_BIT: Readonly<Record<GerrorCause, number>> = {
  'evtq-abort': GERROR_EVTQ_ABT_ERR,
  'priq-abort': GERROR_PRIQ_ABT_ERR,
  'msi-cmdq-abort': GERROR_MSI_CMDQ_ABT_ERR,
  'msi-evtq-abort': GERROR_MSI_EVTQ_ABT_ERR,
  'msi-priq-abort': GERROR_MSI_PRIQ_ABT_ERR,
  'msi-gerror-abort': GERROR_MSI_GERROR_ABT_ERR,
  sfm: GERROR_SFM_ERR,
};

export const GERROR_CAUSES = Object.keys(GERROR_CAUSE_BIT) as GerrorCause[];

export const CMDQ_ERR_CERROR_NONE_IDX = 0;
export const CMDQ_ERR_CERROR_ILL_IDX = 1;
export const CMDQ_ERR_CERROR_ABT_IDX = 2;
export const CMDQ_ERR_CERROR_ATC_INV_IDX = 3;
export const CMDQ_CONS_ERR_SHIFT = 24;

export type SteConfig = 'abort' | 'translate';

export interface Ste {
  config: SteConfig;
  domain: number;
  eats: boolean;
}

interface Outstanding {
  ep: Endpoint;
  sentAt: number;
  done: boolean;
}

/** Page table walker view of the domains (owned by the IOMMU core, read by the hardware). */
export interface PageTables {
  lookup(domain: number, iova: number): number | undefined;
}

/** One hardware command queue with its own GERROR page (the SMMU's, or a tegra241 VCMDQ's). */
export class HwCmdq {
  readonly ring: Array<Cmd | null>;
  prod = 0;
  /** CONS register: index, wrap bit, and CONS.ERR in bits 30:24. */
  cons = 0;
  gerror = 0;
  gerrorn = 0;
  /** Absolute position of the command at CONS (never wraps): names a SYNC uniquely. */
  consumed = 0;
  private outstanding: Outstanding[] = [];
  /** The SYNC at CONS failed before: decide on refetch whether it fails again. */
  private failedAt = -1;
  readonly irq: Irq;

  constructor(
    private readonly m: Machine,
    private readonly smmu: Smmu,
    readonly name: string,
    readonly shift: number,
    irqCpu: number,
    handler: () => Proc<unknown>,
    /** The interrupt its errors raise (the SMMU's GERROR IRQ, or the CMDQV's). */
    irqName = `${name}-gerror-irq`,
  ) {
    this.ring = Array.from({ length: 1 << shift }, () => null);
    this.irq = m.addIrq(irqName, irqCpu, handler);
  }

  get size(): number {
    return 1 << this.shift;
  }
  idx(p: number): number {
    return p & (this.size - 1);
  }
  wrp(p: number): number {
    return p & this.size;
  }
  private consPtr(): number {
    return this.cons & ((this.size << 1) - 1);
  }
  errActive(): boolean {
    return ((this.gerror ^ this.gerrorn) & GERROR_CMDQ_ERR) !== 0;
  }
  empty(): boolean {
    return this.consPtr() === this.prod;
  }

  private advance(): void {
    const c = this.consPtr() + 1;
    this.cons = c & ((this.size << 1) - 1);
    this.consumed++;
  }

  /** Toggle a GERROR bit unless that error is already active, and raise the interrupt. */
  raiseGerror(bit: number): void {
    if (((this.gerror ^ this.gerrorn) & bit) !== 0) return;
    this.gerror ^= bit;
    this.m.raise(this.irq);
  }

  private canRun(): boolean {
    return this.smmu.serving() && !this.errActive() && !this.empty();
  }

  /** The consumer: fetches at CONS while the SMMU serves and no CMDQ error is active. */
  *consumer(events: Events): Proc {
    const m = this.m;
    const ready = new Wait(() => this.canRun(), -1, true, 'commands');
    for (;;) {
      while (!this.canRun()) yield ready;
      const cmd = this.ring[this.idx(this.consPtr())]!;
      switch (cmd.op) {
        case 'ATC_INV': {
          const ep = this.smmu.endpointForSid(cmd.sid);
          if (ep !== undefined) {
            const o: Outstanding = { ep, sentAt: m.now, done: false };
            this.outstanding.push(o);
            ep.receiveInvalidation(cmd, () => {
              o.done = true;
            });
          }
          this.advance();
          yield `consume ${fmt(cmd)}`;
          break;
        }
        case 'CMD_SYNC': {
          if (this.failedAt === this.consumed) {
            this.failedAt = -1;
            // Refetched after an ATC_INV_SYNC error: may fail again while the endpoint is still silent.
            const silent = this.timedOut.filter((ep) => !ep.answersInvalidations());
            if (silent.length > 0 && m.choose(2) === 1) {
              for (const ep of silent) this.outstanding.push({ ep, sentAt: m.now, done: false });
            }
            this.timedOut = [];
          }
          if (this.anyPending()) {
            let oldest = Number.POSITIVE_INFINITY;
            for (const o of this.outstanding) if (!o.done && o.sentAt < oldest) oldest = o.sentAt;
            const deadline = oldest + this.smmu.atcTimeoutUs;
            yield new Wait(this.allCompleted, deadline, true, 'ATC invalidation completions');
            // Disabled, or in Service Failure Mode, meanwhile: the SYNC neither completes nor fails.
            if (!this.smmu.serving()) break;
            if (this.anyPending() && m.now >= deadline) {
              const late = this.outstanding.filter(
                (o) => !o.done && o.sentAt + this.smmu.atcTimeoutUs <= m.now,
              );
              this.timedOut = [...new Set(late.map((o) => o.ep))];
              const sentAt = this.timedOut.map((ep) =>
                Math.min(...late.filter((o) => o.ep === ep).map((o) => o.sentAt)),
              );
              for (const o of late) o.done = true;
              this.outstanding = this.outstanding.filter((o) => !o.done);
              this.failedAt = this.consumed;
              this.cons =
                (this.cons & ~(0x7f << CMDQ_CONS_ERR_SHIFT)) |
                (CMDQ_ERR_CERROR_ATC_INV_IDX << CMDQ_CONS_ERR_SHIFT);
              events.emit({
                kind: 'syncAtcError',
                pos: this.consumed,
                prod: this.consPtr(),
                devs: this.timedOut.map((e) => e.dev),
                sentAt,
                // The SMMU's own queue is the default: its events read as they always have.
                ...(this === this.smmu.cmdq ? {} : { cmdq: this.name }),
              });
              this.raiseGerror(GERROR_CMDQ_ERR);
              yield 'CMD_SYNC fails: CERROR_ATC_INV_SYNC, GERROR.CMDQ_ERR toggles';
            }
            break; // re-evaluate: either all completed, or an error is now active
          }
          this.outstanding = [];
          this.cons &= ~(0x7f << CMDQ_CONS_ERR_SHIFT);
          this.advance();
          yield 'consume CMD_SYNC';
          break;
        }
        case 'CFGI_STE':
        case 'TLBI':
          this.advance();
          yield `consume ${fmt(cmd)}`;
          break;
      }
    }
  }
  private timedOut: Endpoint[] = [];

  /** Some ATC invalidation sent since the last CMD_SYNC has not completed (no allocation: hot). */
  private anyPending(): boolean {
    for (const o of this.outstanding) if (!o.done) return true;
    return false;
  }

  /** The CMD_SYNC's wait condition, made once. */
  private readonly allCompleted = (): boolean => !this.anyPending();
}

function fmt(c: Cmd): string {
  switch (c.op) {
    case 'ATC_INV':
      return `ATC_INV sid ${c.sid}`;
    case 'CFGI_STE':
      return `CFGI_STE sid ${c.sid}`;
    case 'TLBI':
      return `TLBI domain ${c.domain}`;
    default:
      return c.op;
  }
}

export class Smmu {
  /** CR0.SMMUEN (and CMDQEN): cleared by arm_smmu_device_disable(). */
  enabled = true;
  /**
   * In Service Failure Mode: the SMMU has stopped servicing, whatever CR0 says. Modelled as the
   * worst case the architecture allows: no command is consumed and every incoming transaction
   * is terminated (aborted), from the moment SFM is entered; nothing here leaves it.
   */
  sfm = false;
  readonly ste = new Map<number, Ste>();
  private readonly sidToEp = new Map<number, Endpoint>();
  readonly cmdq: HwCmdq;
  /**
   * tegra241 CMDQV: VINTF0's one logical VCMDQ, a second queue of the same size in front of the
   * same SMMU (its commands reach the same stream table and endpoints), with its own
   * GERROR/GERRORN page and the CMDQV error interrupt. Null: a plain SMMUv3.
   */
  readonly vcmdq: HwCmdq | null;

  constructor(
    m: Machine,
    readonly events: Events,
    readonly tables: PageTables,
    shift: number,
    irqCpu: number,
    gerrorHandler: () => Proc<unknown>,
    /** How long the SMMU waits for an ATC invalidation completion (implementation defined). */
    readonly atcTimeoutUs: number,
    /** A tegra241 CMDQV: its error interrupt's CPU and handler (tegra241_cmdqv_isr). */
    cmdqv: { readonly irqCpu: number; readonly isr: () => Proc<unknown> } | null = null,
  ) {
    this.cmdq = new HwCmdq(m, this, 'smmu', shift, irqCpu, gerrorHandler);
    m.agent('SMMU', this.cmdq.consumer(events));
    this.vcmdq =
      cmdqv === null ? null : new HwCmdq(m, this, 'vcmdq0', shift, cmdqv.irqCpu, cmdqv.isr, 'cmdqv-irq');
    if (this.vcmdq !== null) m.agent('VCMDQ0', this.vcmdq.consumer(events));
  }

  /**
   * The CMDQV's error maps (VINTF_ERR_MAP, VINTF0's LVCMDQ_ERR_MAP): bit i set while logical
   * VCMDQ i has an unacknowledged error (GERROR differs from GERRORN). Read by its ISR.
   */
  lvcmdqErrMap(): number {
    const q = this.vcmdq;
    return q !== null && q.gerror !== q.gerrorn ? 1 : 0;
  }

  attachEndpoint(ep: Endpoint): void {
    for (const sid of ep.sids) {
      this.sidToEp.set(sid, ep);
      this.ste.set(sid, { config: 'abort', domain: -1, eats: false });
    }
  }

  endpointForSid(sid: number): Endpoint | undefined {
    return this.sidToEp.get(sid);
  }

  /** An ATS translation request or an untranslated access: walks the STE and the page table. */
  translate(sid: number, iova: number, ats: boolean): { page: number; domain: number } | null {
    const ste = this.ste.get(sid);
    if (!this.serving() || ste === undefined || ste.config !== 'translate') return null;
    if (ats && !ste.eats) return null;
    const page = this.tables.lookup(ste.domain, iova);
    return page === undefined ? null : { page, domain: ste.domain };
  }

  /** Does the SMMU accept a translated (pre-translated by the ATC) request from this SID? */
  acceptsTranslated(sid: number): { domain: number } | null {
    const ste = this.ste.get(sid);
    if (!this.serving() || ste === undefined || ste.config !== 'translate' || !ste.eats) return null;
    return { domain: ste.domain };
  }

  /** Enabled and not in Service Failure Mode: consumes commands and translates (GBPA: abort). */
  serving(): boolean {
    return this.enabled && !this.sfm;
  }

  /**
   * A GERROR cause other than CMDQ_ERR, as the hardware raises it: toggle its GERROR bit (unless
   * that error is already active) and raise the GERROR interrupt on its affine CPU. SFM also
   * stops the SMMU servicing, at once.
   */
  injectGerror(cause: GerrorCause): void {
    if (cause === 'sfm') this.sfm = true;
    this.cmdq.raiseGerror(GERROR_CAUSE_BIT[cause]);
  }

  /** arm_smmu_device_disable(): CR0 cleared (the SMMU and its queues off; GBPA aborts). */
  disable(): void {
    this.enabled = false;
  }
}
