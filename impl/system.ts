/**
 * One simulated system: the machine, the hardware and the kernel objects, built from a
 * topology under a variant; and the operations a scenario can start.
 */
import { match } from 'ts-pattern';
import { Events } from './events.ts';
import { Endpoint, type FlrOutcome } from './hw/endpoint.ts';
import { Memory } from './hw/memory.ts';
import { type GerrorCause, Smmu } from './hw/smmu.ts';
import {
  iommuAttachGroup,
  iommuSetupDefaultDomain,
  iommuGroupBrokenWorker,
  iommuMap,
  iommuProbeDevice,
  iommuUnmap,
} from './iommu/iommu.ts';
import {
  ArmSmmuCmdq,
  ArmSmmuMaster,
  GroupDevice,
  IommuDomain,
  IommuGroup,
  type Kernel,
  type PciDev,
} from './kernel.ts';
import { pciProbeResetMethods, pciResetFunction, pciStopAndRemoveBusDevice } from './pci/pci.ts';
import { handleErrorSource } from './pci/pcie/aer.ts';
import { type ChoiceSource, Machine, type MachineLimits, type Proc, Wait } from './sim/machine.ts';
import { Mutex, Rcu } from './sim/sync.ts';
import { Work, Workqueue } from './sim/workqueue.ts';
import { armSmmuCmdqErrHandler, armSmmuGerrorHandler } from './smmuv3/cmdq.ts';
import {
  tegra241CmdqvIsr,
  tegra241GuestVcmdqSupportsCmd,
  tegra241VcmdqHandleCmdqErr,
} from './smmuv3/tegra241-cmdqv.ts';
import type { Variant } from './variants.ts';

export interface DeviceSpec {
  /** ATS capability present. */
  readonly ats: boolean;
  /** Number of stream IDs (1 or 2). */
  readonly sids: number;
  /** Has a device-specific reset quirk that wraps FLR (quirks.c). */
  readonly quirk?: boolean;
  /** A VF of device `pf` (an earlier device that is not itself a VF). */
  readonly pf?: number;
  /** quirk_no_ats: the kernel must not use this function's ATS. */
  readonly noAts?: boolean;
  /** Function Level Reset capability (PCI_EXP_DEVCAP_FLR); absent: true. */
  readonly flr?: boolean;
  /** An ACPI _RST method: one that resets the function, or one whose evaluation fails. */
  readonly acpiRst?: 'works' | 'fails';
  /** Alone below its bridge, so a secondary bus reset resets just this function. */
  readonly busReset?: boolean;
  /** Advanced Features FLR (PCI_CAP_ID_AF with TP and FLR): the af_flr method; absent: false. */
  readonly afFlr?: boolean;
  /** PM capability without No_Soft_Reset: the pm method (D3hot -> D0 resets); absent: false. */
  readonly pmReset?: boolean;
  /**
   * Below a CXL port that masks a secondary bus reset: the bus method answers -ENOTTY, and the
   * cxl_bus method unmasks it and does the bus reset (which needs `busReset`); absent: false.
   */
  readonly cxlBus?: boolean;
  /**
   * A DMA alias of device N (an earlier device): this function's requests can carry N's RID (a
   * function-0 DMA alias quirk, or a PCIe-to-PCI bridge that takes ownership of them), so IORT
   * adds N's stream IDs to its fwspec. On SMMUv3 its IOMMU probe then fails: N's master holds
   * them (arm_smmu_insert_master()). Absent: none.
   */
  readonly dmaAliasOf?: number;
}

export interface Topology {
  readonly cpus: number;
  readonly devices: readonly DeviceSpec[];
  /** CPU the GERROR interrupt is affine to. */
  readonly gerrorIrqCpu: number;
  /** log2 of the command queue size. */
  readonly queueShift: number;
  /** CMDQ_BATCH_ENTRIES */
  readonly batchEntries: number;
  /** The SMMU's ATC invalidation completion timeout, µs. */
  readonly atcTimeoutUs: number;
  /** IOVAs 0..iovas-1 are mapped in domain 0 at start. */
  readonly iovas: number;
  /**
   * CPUs can be stalled (vCPU preemption, NMI/SMI, a long IRQs-off stretch): a choice may let
   * virtual time pass while tasks or handlers are runnable. Absent: off, time passes only when
   * everything waits. See MachineOptions.stalls in impl/sim/machine.ts.
   */
  readonly stalls?: boolean;
  /**
   * A tegra241 CMDQV in front of the SMMU, as a guest kernel sees it: one more command queue
   * (VINTF0's logical VCMDQ 0, same size) taking TLB and ATC invalidations with their CMD_SYNC
   * from every CPU, while CFGI_STE stays on the SMMU's queue; the VCMDQ reports its errors on its
   * own GERROR/GERRORN page through the CMDQV interrupt, affine to `irqCpu`. Absent: a plain
   * SMMUv3 with one queue.
   */
  readonly vcmdq?: { readonly irqCpu: number };
}

export const PAGING_DOMAINS = 2;

export type Op =
  | { readonly kind: 'map'; readonly cpu: number; readonly domain: number; readonly iova: number }
  | { readonly kind: 'unmap'; readonly cpu: number; readonly domain: number; readonly iova: number }
  | { readonly kind: 'attach'; readonly cpu: number; readonly dev: number; readonly domain: number }
  | { readonly kind: 'reset'; readonly cpu: number; readonly dev: number; readonly outcome: FlrOutcome }
  | { readonly kind: 'dma'; readonly dev: number; readonly iova: number }
  | { readonly kind: 'hang'; readonly dev: number }
  | { readonly kind: 'unplug'; readonly cpu: number; readonly dev: number }
  | { readonly kind: 'probe'; readonly cpu: number; readonly dev: number }
  /**
   * An uncorrectable fatal error reported by the device: the AER driver (its threaded interrupt,
   * on `cpu`) recovers it with a secondary bus reset of its Port, which the endpoint does as
   * `outcome` says (pci/pcie/aer.ts). The default search does not generate it; the catalog's
   * known limit aer-recovery-unfenced turns a scenario's resets into it.
   */
  | { readonly kind: 'aer'; readonly cpu: number; readonly dev: number; readonly outcome: FlrOutcome }
  /**
   * The SMMU raises a GERROR cause other than CMDQ_ERR (hw/smmu.ts GerrorCause), `delayUs` of
   * virtual time into the round (0: at once), so that it can land while a CMD_SYNC is failing.
   */
  | { readonly kind: 'gerror'; readonly cause: GerrorCause; readonly delayUs: number };

const GERROR_CAUSE_TEXT: Record<GerrorCause, string> = {
  'evtq-abort': 'EVTQ_ABT_ERR (event queue write aborted)',
  'priq-abort': 'PRIQ_ABT_ERR (PRI queue write aborted)',
  'msi-cmdq-abort': 'MSI_CMDQ_ABT_ERR (CMD_SYNC MSI write aborted)',
  'msi-evtq-abort': 'MSI_EVTQ_ABT_ERR (event queue MSI write aborted)',
  'msi-priq-abort': 'MSI_PRIQ_ABT_ERR (PRI queue MSI write aborted)',
  'msi-gerror-abort': 'MSI_GERROR_ABT_ERR (GERROR MSI write aborted)',
  sfm: 'SFM_ERR (enters Service Failure Mode)',
};

export function fmtOp(op: Op): string {
  return match(op)
    .with({ kind: 'map' }, (o) => `cpu${o.cpu}: iommu_map(domain ${o.domain}, iova ${o.iova})`)
    .with({ kind: 'unmap' }, (o) => `cpu${o.cpu}: iommu_unmap(domain ${o.domain}, iova ${o.iova})`)
    .with({ kind: 'attach' }, (o) => `cpu${o.cpu}: attach dev${o.dev} to domain ${o.domain}`)
    .with(
      { kind: 'reset' },
      (o) => `cpu${o.cpu}: pci_reset_function(dev${o.dev}), FLR ${o.outcome === 'ok' ? 'works' : 'fails'}`,
    )
    .with({ kind: 'dma' }, (o) => `dev${o.dev}: DMA write to iova ${o.iova}`)
    .with({ kind: 'hang' }, (o) => `dev${o.dev}: stops answering ATC invalidations`)
    .with({ kind: 'unplug' }, (o) => `cpu${o.cpu}: hot unplug of dev${o.dev}`)
    .with({ kind: 'probe' }, (o) => `cpu${o.cpu}: probe the reset methods of dev${o.dev} (sysfs)`)
    .with(
      { kind: 'aer' },
      (o) =>
        `cpu${o.cpu}: AER recovery of dev${o.dev} (uncorrectable fatal error), bus reset ${o.outcome === 'ok' ? 'works' : 'fails'}`,
    )
    .with(
      { kind: 'gerror' },
      (o) =>
        `SMMU${o.delayUs > 0 ? `, ${fmtUs(o.delayUs)} into the round` : ''}: GERROR.${GERROR_CAUSE_TEXT[o.cause]}`,
    )
    .exhaustive();
}

const SIDS_PER_DEVICE = 4;

export class System {
  readonly m: Machine;
  readonly k: Kernel;
  readonly eps: Endpoint[];

  constructor(
    readonly topo: Topology,
    readonly v: Variant,
    choices: ChoiceSource,
    limits?: MachineLimits,
  ) {
    const m = new Machine(topo.cpus, choices, limits, { stalls: topo.stalls === true });
    this.m = m;
    const ev = new Events();
    const mem = new Memory(topo.iovas * PAGING_DOMAINS + 4);
    const domains: IommuDomain[] = [];
    for (let i = 0; i < PAGING_DOMAINS; i++) domains.push(new IommuDomain(i, 'paging'));
    domains.push(new IommuDomain(PAGING_DOMAINS, 'blocked'));
    const tables = { lookup: (d: number, iova: number) => domains[d]?.pt.get(iova) };
    // The kernel object is filled below; the IRQ handler only runs once the machine runs.
    let kref: Kernel | null = null;
    const hw = new Smmu(
      m,
      ev,
      tables,
      topo.queueShift,
      topo.gerrorIrqCpu,
      () => armSmmuGerrorHandler(kref!),
      topo.atcTimeoutUs,
      topo.vcmdq === undefined ? null : { irqCpu: topo.vcmdq.irqCpu, isr: () => tegra241CmdqvIsr(kref!) },
    );
    const cmdq = new ArmSmmuCmdq(m, hw.cmdq, topo.queueShift, v.patch(15) ? armSmmuCmdqErrHandler : null);
    // tegra241_vcmdq_alloc_smmu_cmdq(): a guest's VINTF is not HYP_OWN, so its VCMDQs filter
    const cmdqv =
      hw.vcmdq === null
        ? null
        : {
            lvcmdqs: [
              new ArmSmmuCmdq(
                m,
                hw.vcmdq,
                topo.queueShift,
                v.patch(15) ? tegra241VcmdqHandleCmdqErr : null,
                tegra241GuestVcmdqSupportsCmd,
              ),
            ],
          };
    const rcu = new Rcu(m);
    const wq = new Workqueue(m);
    this.eps = topo.devices.map(
      (d, i) =>
        new Endpoint(
          m,
          ev,
          hw,
          i,
          Array.from({ length: d.sids }, (_, s) => i * SIDS_PER_DEVICE + s),
          d.ats,
        ),
    );
    for (const ep of this.eps) hw.attachEndpoint(ep);
    const k: Kernel = {
      m,
      v,
      ev,
      rcu,
      wq,
      mem,
      smmu: {
        hw,
        cmdq,
        cmdqv,
        batchEntries: topo.batchEntries,
        optForceSync: false,
        asidLock: new Mutex(m, 'arm_smmu_asid_lock'),
        streams: new Map(),
      },
      pdevs: [],
      domains,
      groups: [],
      gdevs: [],
    };
    kref = k;
    this.k = k;
    for (const ep of this.eps) {
      const spec = topo.devices[ep.dev]!;
      const alias = spec.dmaAliasOf;
      if (alias !== undefined && !(Number.isInteger(alias) && alias >= 0 && alias < ep.dev))
        throw new Error(`dev${ep.dev} is a DMA alias of dev${alias}, which must be an earlier device`);
      const pdev: PciDev = {
        index: ep.dev,
        name: `dev${ep.dev}`,
        ep,
        atsCap: ep.atsCapable,
        physfn: spec.pf === undefined ? null : k.pdevs[spec.pf]!,
        noAts: spec.noAts ?? false,
        atsStu: 0,
        quirk: spec.quirk ?? false,
        flr: spec.flr ?? true,
        acpiRst: spec.acpiRst ?? null,
        busReset: spec.busReset ?? false,
        afFlr: spec.afFlr ?? false,
        pmReset: spec.pmReset ?? false,
        cxlPort: spec.cxlBus ?? false,
        cxlSbrMasked: spec.cxlBus ?? false,
        atsEnabled: false,
        dmaAlias: alias === undefined ? null : k.pdevs[alias]!,
        deviceLock: new Mutex(m, `dev${ep.dev} device_lock`),
        group: null,
        master: null,
        hasIommu: true,
        removed: false,
      };
      // The fwspec: iort_iommu_configure() calls iort_pci_iommu_init() for every RID
      // pci_for_each_dma_alias() visits, the function's own first, so a DMA alias also gets the
      // stream IDs of the RID it aliases. (The endpoint's DMA stays on its own stream IDs here;
      // real requests carrying the alias RID would go through the other master's STEs, which is
      // why arm_smmu_insert_master() warns "expect DMA to be broken".)
      const fwspec = alias === undefined ? ep.sids : [...ep.sids, ...this.eps[alias]!.sids];
      pdev.master = new ArmSmmuMaster(m, pdev, fwspec);
      const group = new IommuGroup(ep.dev, new Mutex(m, `group${ep.dev} mutex`));
      const gdevRef: { g: GroupDevice | null } = { g: null };
      const gdev = new GroupDevice(
        group,
        pdev,
        new Work(`dev${ep.dev} broken_work`, () => iommuGroupBrokenWorker(k, gdevRef.g!)),
      );
      gdevRef.g = gdev;
      group.devices.push(gdev);
      pdev.group = group;
      k.pdevs.push(pdev);
      k.groups.push(group);
      k.gdevs.push(gdev);
    }
  }

  /** Probe-time state: every device probed, every group on domain 0, IOVAs 0..n-1 mapped there. */
  *setupProc(): Proc {
    const k = this.k;
    for (const pdev of k.pdevs) yield* iommuProbeDevice(k, pdev);
    for (let iova = 0; iova < this.topo.iovas; iova++) yield* iommuMap(k, k.domains[0]!, iova);
    for (const g of k.groups) yield* iommuSetupDefaultDomain(k, k.domains[0]!, g);
  }

  setup(): 'quiescent' | 'violation' {
    this.m.spawn('probe', 0, this.setupProc());
    return this.m.runRound();
  }

  /** Starts one operation. A plain switch: this runs for every operation of every scenario. */
  start(op: Op, i: number): void {
    const { m, k } = this;
    switch (op.kind) {
      case 'map':
        m.spawn(`map#${i}`, op.cpu, iommuMap(k, k.domains[op.domain]!, op.iova));
        return;
      case 'unmap':
        m.spawn(`unmap#${i}`, op.cpu, iommuUnmap(k, k.domains[op.domain]!, op.iova));
        return;
      case 'attach':
        // The group outlives its removed devices: attaching it then attaches no one.
        m.spawn(`attach#${i}`, op.cpu, iommuAttachGroup(k, k.domains[op.domain]!, k.groups[op.dev]!));
        return;
      case 'reset':
        m.spawn(`reset#${i}`, op.cpu, pciResetFunction(k, k.pdevs[op.dev]!, op.outcome));
        return;
      case 'dma':
        m.agent(`dma#${i}`, this.eps[op.dev]!.dma(op.iova), { daemon: false });
        return;
      case 'probe':
        m.spawn(`probe#${i}`, op.cpu, pciProbeResetMethods(k, k.pdevs[op.dev]!));
        return;
      case 'unplug':
        m.spawn(`unplug#${i}`, op.cpu, pciStopAndRemoveBusDevice(k, k.pdevs[op.dev]!));
        return;
      case 'aer':
        m.spawn(`aer#${i}`, op.cpu, handleErrorSource(k, k.pdevs[op.dev]!, op.outcome));
        return;
      case 'hang':
        m.agent(`hang#${i}`, hangProc(this.eps[op.dev]!), { daemon: false });
        return;
      case 'gerror': {
        const t = m.agent(`gerror#${i}`, gerrorProc(k.smmu.hw, op.cause), { daemon: false });
        // The hardware raises it `delayUs` into the round: the agent's first step waits until then
        // (so that its first step is the GERROR itself, which coverage samples).
        if (op.delayUs > 0) t.wait = new Wait(() => false, m.now + op.delayUs, false, 'its time');
        return;
      }
      default: {
        const unknown: never = op;
        throw new Error(`unknown operation ${JSON.stringify(unknown)}`);
      }
    }
  }

  runRound(ops: readonly Op[], firstIndex: number): 'quiescent' | 'violation' {
    ops.forEach((op, j) => {
      this.start(op, firstIndex + j);
    });
    return this.m.runRound();
  }
}

/** The hang operation: the endpoint stops answering invalidations, in one step. */
function* hangProc(ep: Endpoint): Proc {
  ep.hang();
  yield `EP${ep.dev} hangs: stops answering invalidations`;
}

const fmtUs = (us: number): string => (us % 1000 === 0 ? `${us / 1000} ms` : `${us} µs`);

/** The gerror operation: the SMMU raises one GERROR cause, in one step. */
function* gerrorProc(hw: Smmu, cause: GerrorCause): Proc {
  hw.injectGerror(cause);
  yield `GERROR.${GERROR_CAUSE_TEXT[cause].split(' ')[0]} toggles, GERROR interrupt raised`;
}
