/**
 * drivers/iommu/arm/arm-smmu-v3/tegra241-cmdqv.c — NVIDIA's CMDQ virtualisation in front of an
 * SMMUv3: VINTF0's logical VCMDQ takes the commands it supports (picked per CPU), the SMMU's own
 * queue the rest; a VCMDQ reports a command error on its own GERROR/GERRORN page and the CMDQV's
 * interrupt, handled by tegra241_cmdqv_isr(). One logical VCMDQ is modelled, so every CPU uses
 * it (`smp_processor_id() % num_lvcmdqs_per_vintf` is 0).
 */
import type { Cmd } from '../hw/cmd.ts';
import { GERROR_CMDQ_ERR } from '../hw/smmu.ts';
import type { ArmSmmuCmdq, Kernel, Tegra241Cmdqv } from '../kernel.ts';
import type { Proc } from '../sim/machine.ts';
import { __armSmmuCmdqSkipErr, armSmmuCmdqSupportsCmd } from './cmdq.ts';

/**
 * tegra241_guest_vcmdq_supports_cmd(): a VINTF that is not HYP_OWN (the kernel runs as a guest)
 * takes only TLB invalidations (TLBI_NH_ASID, TLBI_NH_VA) and ATC_INV; CFGI_STE goes to the
 * SMMU's queue. (A host kernel's VINTF0 is HYP_OWN and takes every command: not modelled, as it
 * leaves the SMMU's own queue idle.) The CMD_SYNC an issuer appends goes with its batch.
 */
export function tegra241GuestVcmdqSupportsCmd(cmd: Cmd): boolean {
  return cmd.op === 'TLBI' || cmd.op === 'ATC_INV';
}

/** tegra241_cmdqv_get_cmdq(): the issuing CPU's logical VCMDQ if it takes the command, else NULL. */
export function tegra241CmdqvGetCmdq(k: Kernel, cmdqv: Tegra241Cmdqv, cmd: Cmd): ArmSmmuCmdq | null {
  // lidx = smp_processor_id() % cmdqv->num_lvcmdqs_per_vintf
  const vcmdq = cmdqv.lvcmdqs[k.m.self().cpu % cmdqv.lvcmdqs.length]!;
  // Unsupported CMD goes for smmu->cmdq pathway
  if (!armSmmuCmdqSupportsCmd(vcmdq, cmd)) return null;
  return vcmdq;
}

/**
 * tegra241_vintf0_handle_error(): acknowledge each logical VCMDQ in VINTF0's error map. Before
 * P14 it skips the error without a lock and without checking GERROR against GERRORN; P14 takes
 * the queue's cmdq_err_lock and skips only a CMDQ_ERR still active (an issuer's concurrent
 * drain through the queue's cmdq_err_handler may have acknowledged it).
 */
export function* tegra241Vintf0HandleError(k: Kernel, cmdqv: Tegra241Cmdqv): Proc {
  let map = k.smmu.hw.lvcmdqErrMap();
  yield 'read LVCMDQ_ERR_MAP';
  while (map !== 0) {
    const lidx = 31 - Math.clz32(map & -map); // __ffs64(map)
    const cmdq = cmdqv.lvcmdqs[lidx]!;
    const hw = cmdq.hw;
    if (k.v.patch(14)) {
      // P14: serialise with the issuer's drain (tegra241_vcmdq_handle_cmdq_err)
      yield* cmdq.cmdqErrLock.lock(true);
      const gerror = hw.gerror;
      const gerrorn = hw.gerrorn;
      yield `read ${hw.name} GERROR/GERRORN`;
      if ((gerror ^ gerrorn) & GERROR_CMDQ_ERR) __armSmmuCmdqSkipErr(k, cmdq);
      hw.gerrorn = gerror;
      yield `write ${hw.name} GERRORN`;
      yield* cmdq.cmdqErrLock.unlock(true);
    } else {
      const gerror = hw.gerror;
      yield `read ${hw.name} GERROR`;
      __armSmmuCmdqSkipErr(k, cmdq);
      hw.gerrorn = gerror;
      yield `write ${hw.name} GERRORN`;
    }
    map &= ~(1 << lidx);
  }
}

/** tegra241_cmdqv_isr(): the CMDQV's error interrupt; VINTF0 is the only interface in use. */
export function* tegra241CmdqvIsr(k: Kernel): Proc {
  const cmdqv = k.smmu.cmdqv!;
  // VINTF_ERR_MAP: VINTF0's bit is set while one of its logical VCMDQs has an error.
  const vintfMap = k.smmu.hw.lvcmdqErrMap() !== 0 ? 1 : 0;
  yield 'read VINTF_ERR_MAP';
  k.m.printk(
    'warn',
    `tegra241_cmdqv: unexpected error reported. vintf_map: ${vintfMap.toString(16).padStart(16, '0')}, vcmdq_map 00000000:00000000:00000000:${k.smmu.hw.lvcmdqErrMap().toString(16).padStart(8, '0')}`,
  );
  // Handle VINTF0 and its LVCMDQs
  if (vintfMap & 1) yield* tegra241Vintf0HandleError(k, cmdqv);
}

/**
 * tegra241_vcmdq_handle_cmdq_err() (P15): a VCMDQ's cmdq_err_handler, the issuer's drain of a
 * pending CMDQ_ERR on that VCMDQ's own GERROR page, under that queue's cmdq_err_lock.
 */
export function* tegra241VcmdqHandleCmdqErr(k: Kernel, cmdq: ArmSmmuCmdq): Proc {
  const hw = cmdq.hw;
  yield* cmdq.cmdqErrLock.lock(true);
  const gerror = hw.gerror;
  const gerrorn = hw.gerrorn;
  yield `read ${hw.name} GERROR/GERRORN`;
  if ((gerror ^ gerrorn) & GERROR_CMDQ_ERR) {
    __armSmmuCmdqSkipErr(k, cmdq);
    // Toggle only the CMDQ_ERR bit on this VCMDQ's GERRORN
    hw.gerrorn = gerrorn ^ GERROR_CMDQ_ERR;
    yield `skip CMDQ_ERR; toggle ${hw.name} GERRORN.CMDQ_ERR`;
  }
  yield* cmdq.cmdqErrLock.unlock(true);
}
