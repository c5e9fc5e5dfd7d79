/**
 * The kernel objects of one simulated system and the context every kernel function receives.
 * Structures keep their kernel names in doc comments; fields are the ones the seeds touch.
 */
import type { Events } from './events.ts';
import type { Cmd } from './hw/cmd.ts';
import type { Endpoint } from './hw/endpoint.ts';
import type { Memory } from './hw/memory.ts';
import type { HwCmdq, Smmu } from './hw/smmu.ts';
import { Tracked } from './sim/lifetime.ts';
import type { Machine } from './sim/machine.ts';
import { type Mutex, type Rcu, SpinLock } from './sim/sync.ts';
import type { Work, Workqueue } from './sim/workqueue.ts';
import type { Variant } from './variants.ts';

export const EINVAL = -22;
export const EBUSY = -16;
export const ENOTTY = -25;
export const ETIMEDOUT = -110;
export const EIO = -5;
export const ENODEV = -19;

export function errName(rc: number): string {
  switch (rc) {
    case 0:
      return '0';
    case EINVAL:
      return '-EINVAL';
    case EBUSY:
      return '-EBUSY';
    case ENOTTY:
      return '-ENOTTY';
    case ETIMEDOUT:
      return '-ETIMEDOUT';
    case EIO:
      return '-EIO';
    case ENODEV:
      return '-ENODEV';
    default:
      return String(rc);
  }
}

/** enum gdev_blocked (P03, P04, P11): a bigger number is a higher severity. */
export const BLOCKED_NO = 0;
export const BLOCKED_RESETTING = 1;
export const BLOCKED_RESET_FAILED = 2;
export const BLOCKED_BROKEN = 3;
export const BLOCKED_NAMES = ['BLOCKED_NO', 'BLOCKED_RESETTING', 'BLOCKED_RESET_FAILED', 'BLOCKED_BROKEN'];

/** struct pci_dev (the fields ats.c and the reset code use). */
export interface PciDev {
  readonly index: number;
  readonly name: string;
  readonly ep: Endpoint;
  /** dev->ats_cap != 0 */
  readonly atsCap: boolean;
  /** pci_physfn(): the PF of a VF; null for a PF or a plain function. */
  readonly physfn: PciDev | null;
  /** dev->no_ats (quirk_no_ats): ATS must not be used on this function. */
  readonly noAts: boolean;
  /** dev->ats_stu: the Smallest Translation Unit programmed in a PF (0 until prepared). */
  atsStu: number;
  /** Has a device-specific (quirk) reset method that wraps FLR. */
  readonly quirk: boolean;
  /** PCI_EXP_DEVCAP_FLR */
  readonly flr: boolean;
  /** ACPI _RST: present and working, present but failing when evaluated, or absent. */
  readonly acpiRst: 'works' | 'fails' | null;
  /** A secondary bus reset would reset only this function. */
  readonly busReset: boolean;
  /** The Advanced Features capability with TP and FLR (PCI_CAP_ID_AF): pci_af_flr() applies. */
  readonly afFlr: boolean;
  /** dev->pm_cap, with PCI_PM_CTRL_NO_SOFT_RESET clear: D3hot->D0 resets the function. */
  readonly pmReset: boolean;
  /** The upstream bridge is a CXL port (cxl_port_dvsec() != 0): cxl_reset_bus_function() applies. */
  readonly cxlPort: boolean;
  /** That CXL port masks a secondary bus reset (PCI_DVSEC_CXL_PORT_CTL_UNMASK_SBR clear). */
  cxlSbrMasked: boolean;
  /** dev->ats_enabled */
  atsEnabled: boolean;
  /**
   * dev->dma_alias_mask, with at most one bit: the function whose RID this one's requests may
   * carry (a function-0 DMA alias quirk, or a PCIe-to-PCI bridge taking ownership); null: none.
   */
  readonly dmaAlias: PciDev | null;
  /** device_lock(&dev->dev) */
  readonly deviceLock: Mutex;
  /** dev->iommu_group */
  group: IommuGroup | null;
  /** dev->iommu->priv: the SMMU driver's master; null once released. */
  master: ArmSmmuMaster | null;
  /** dev_has_iommu(): dev->iommu is set. */
  hasIommu: boolean;
  /** Removed from the bus (hot unplug). */
  removed: boolean;
}

/** struct iommu_domain + struct arm_smmu_domain. */
export class IommuDomain {
  /** The page table (IOVA → physical page). */
  readonly pt = new Map<number, number>();
  /** smmu_domain->invs: replaced copy-on-write and read under RCU. */
  invs = new ArmSmmuInvs([], false);
  nrAtsMasters = 0;
  constructor(
    readonly id: number,
    readonly type: 'paging' | 'blocked',
  ) {}
}

/** struct iommu_group */
export class IommuGroup extends Tracked {
  /** group->domain: NULL until iommu_setup_default_domain() at probe. */
  domain: IommuDomain | null = null;
  blockingDomain: IommuDomain | null = null;
  recoveryCnt = 0;
  readonly devices: GroupDevice[] = [];
  constructor(
    readonly id: number,
    readonly mutex: Mutex,
  ) {
    super(`iommu_group ${id}`);
  }
}

/** struct group_device */
export class GroupDevice extends Tracked {
  blocked = BLOCKED_NO;
  resetDepth = 0;
  brokenPending = false;
  constructor(
    readonly group: IommuGroup,
    readonly dev: PciDev,
    readonly brokenWork: Work,
  ) {
    super(`group_device of ${dev.name}`);
  }
}

/** struct arm_smmu_inv */
export interface ArmSmmuInv {
  readonly type: 'S2_VMID' | 'ATS';
  readonly id: number;
  /** INV_TYPE_ATS only (P17). */
  readonly master: ArmSmmuMaster | null;
  /** v4-minimal: the entry's ATC timed out; no more invalidations go to it. */
  broken?: boolean;
}

/**
 * struct arm_smmu_invs: an array replaced copy-on-write and read under RCU. ATS readers also
 * hold its rwlock, so that an attach turning a master's ATS off can wait for every in-flight
 * ATS invalidation still walking the old array, and mark it old so new readers re-read.
 */
export class ArmSmmuInvs {
  readers = 0;
  writer = false;
  old = false;
  constructor(
    readonly inv: readonly ArmSmmuInv[],
    readonly hasAts: boolean,
  ) {}
}

/**
 * struct arm_smmu_master. `sids` are its fwspec's stream IDs (master->streams): the function's
 * own and, for a DMA alias, those IORT maps its alias RID to (iort_pci_iommu_init() runs for
 * every RID pci_for_each_dma_alias() visits).
 */
export class ArmSmmuMaster extends Tracked {
  /** master->ats_enabled */
  atsEnabled = false;
  /** master->ats_broken (P18) */
  atsBroken = false;
  /** The domain this master is attached to (for removing its invs entries). */
  domain: IommuDomain | null = null;
  readonly atsBrokenLock: SpinLock;
  /** master->ats_invs (P22) */
  readonly atsInvs: ArmSmmuInvs;
  constructor(
    m: Machine,
    readonly dev: PciDev,
    readonly sids: readonly number[],
  ) {
    super(`arm_smmu_master of ${dev.name}`);
    this.atsBrokenLock = new SpinLock(m, `${dev.name} ats_broken_lock`);
    this.atsInvs = new ArmSmmuInvs(
      sids.map((id) => ({ type: 'ATS', id, master: this })),
      true,
    );
  }
}

/** struct arm_smmu_ll_queue: prod (with the OWNED flag in bit 31) and cons, updated together. */
export interface LlQueue {
  prod: number;
  cons: number;
}

export type CmdqErrHandler = (
  k: Kernel,
  cmdq: ArmSmmuCmdq,
) => Generator<import('./sim/machine.ts').Yielded, void, void>;

/** struct arm_smmu_cmdq */
export class ArmSmmuCmdq {
  readonly llq: LlQueue = { prod: 0, cons: 0 };
  /** valid_map: the wrap bit a slot was last written with. */
  readonly validMap: number[];
  ownerProd = 0;
  /** cmdq->lock: > 0 shared holders, INT_MIN exclusive. */
  lock = 0;
  /** atc_sync_timeouts (P12) */
  readonly atcSyncTimeouts: boolean[];
  /** cmdq_err_lock (P14): serialises a CMDQ_ERR drain with this queue's own error interrupt. */
  readonly cmdqErrLock: SpinLock;
  /**
   * nr_errs_skipped, a field the sync-behind-failure fix adds: how many CMDQ errors
   * __arm_smmu_cmdq_skip_err() has skipped (a count: GERRORN's bit would toggle back after two).
   */
  nrErrsSkipped = 0;
  /** Appended to the issuer's step labels that name a slot: '' for smmu->cmdq. */
  readonly where: string;
  constructor(
    m: Machine,
    readonly hw: HwCmdq,
    readonly maxNShift: number,
    /** cmdq_err_handler (P14, P15); null in mainline. */
    readonly cmdqErrHandler: CmdqErrHandler | null,
    /** supports_cmd: the commands this queue takes; null takes every command. */
    readonly supportsCmd: ((cmd: Cmd) => boolean) | null = null,
  ) {
    const n = 1 << maxNShift;
    this.validMap = Array.from({ length: n }, () => n);
    this.atcSyncTimeouts = Array.from({ length: n }, () => false);
    this.cmdqErrLock = new SpinLock(m, `${hw.name} cmdq_err_lock`);
    this.where = hw.name === 'smmu' ? '' : ` on ${hw.name}`;
  }
}

/**
 * struct tegra241_cmdqv, with VINTF0 (the in-kernel interface) folded in: its logical VCMDQs,
 * each a struct arm_smmu_cmdq of its own (tegra241_vcmdq.cmdq).
 */
export interface Tegra241Cmdqv {
  /** vintfs[0]->lvcmdqs */
  readonly lvcmdqs: readonly ArmSmmuCmdq[];
}

/** struct arm_smmu_device */
export interface ArmSmmuDevice {
  readonly hw: Smmu;
  readonly cmdq: ArmSmmuCmdq;
  /** A tegra241 CMDQV (smmu->impl_ops are tegra241_cmdqv_impl_ops); null: a plain SMMUv3. */
  readonly cmdqv: Tegra241Cmdqv | null;
  /** CMDQ_BATCH_ENTRIES (64 in the kernel; small here so batches fill). */
  readonly batchEntries: number;
  /** ARM_SMMU_OPT_CMDQ_FORCE_SYNC */
  readonly optForceSync: boolean;
  /** arm_smmu_asid_lock: serialises attaches (prepare, STE install, commit) across devices. */
  readonly asidLock: Mutex;
  /**
   * smmu->streams: the rb-tree of the probed masters' stream IDs (stream ID -> its master),
   * under smmu->streams_mutex (taken and dropped within one step here: probe and release
   * change it synchronously).
   */
  readonly streams: Map<number, ArmSmmuMaster>;
}

export interface Kernel {
  readonly m: Machine;
  readonly v: Variant;
  readonly ev: Events;
  readonly rcu: Rcu;
  readonly wq: Workqueue;
  readonly mem: Memory;
  readonly smmu: ArmSmmuDevice;
  readonly pdevs: PciDev[];
  readonly domains: IommuDomain[];
  readonly groups: IommuGroup[];
  readonly gdevs: GroupDevice[];
}
