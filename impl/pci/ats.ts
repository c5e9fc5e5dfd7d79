/**
 * drivers/pci/ats.c — the ATS capability as the IOMMU drivers see it, with the PF/VF rules of
 * "[PATCH v4 0/5] iommu: Standardize ATS robustness and state tracking" (seed 000).
 */
import { EBUSY, EINVAL, type Kernel, type PciDev } from '../kernel.ts';

/** PCI_ATS_MIN_STU: 4 KiB, the smallest translation unit ATS can describe. */
export const PCI_ATS_MIN_STU = 12;

/** pci_ats_supported(): ATS capability present, the function not quirked (nor, for a VF, its PF). */
export function pciAtsSupported(k: Kernel, dev: PciDev): boolean {
  if (!dev.atsCap || dev.noAts) return false;
  // 000 1/5: a VF shares its PF's ATS hardware, so a PF-level no-ATS quirk applies to it too
  const pfAware = k.v.atsPatch(1) && !k.v.bug('vf-ats-ignores-pf-quirk');
  if (pfAware && dev.physfn !== null && dev.physfn.noAts) return false;
  return true;
}

/** pci_prepare_ats(): program the STU before ATS is enabled; the failable half of enabling. */
export function pciPrepareAts(k: Kernel, dev: PciDev, ps: number): number {
  if (!pciAtsSupported(k, dev)) return EINVAL;
  if (k.m.warnOn(dev.atsEnabled, `pci_prepare_ats: ATS already enabled on ${dev.name}`)) return EBUSY;
  if (ps < PCI_ATS_MIN_STU) return EINVAL;
  if (dev.physfn !== null) {
    // 000 2/5: a VF's STU is its PF's (hardwired to zero in the VF): it must match
    const checked = k.v.atsPatch(2) && !k.v.bug('vf-stu-unchecked');
    if (checked && dev.physfn.atsStu !== ps) return EINVAL;
    return 0;
  }
  dev.atsStu = ps;
  return 0;
}

/** pci_enable_ats(): a VF fails unless its PF already has the same STU. */
export function pciEnableAts(k: Kernel, dev: PciDev, ps: number): number {
  if (!pciAtsSupported(k, dev)) return EINVAL;
  if (k.m.warnOn(dev.atsEnabled, `pci_enable_ats: ATS already enabled on ${dev.name}`)) return EBUSY;
  if (ps < PCI_ATS_MIN_STU) return EINVAL;
  if (dev.physfn !== null) {
    if (dev.physfn.atsStu !== ps) return EINVAL;
  } else {
    dev.atsStu = ps;
  }
  dev.ep.atsEnabled = true;
  dev.atsEnabled = true;
  return 0;
}

/** pci_disable_ats(): the WARN at ats.c:132 when ATS was not enabled. */
export function pciDisableAts(k: Kernel, dev: PciDev): void {
  if (k.m.warnOn(!dev.atsEnabled, `drivers/pci/ats.c:132 pci_disable_ats: ATS not enabled on ${dev.name}`))
    return;
  dev.ep.atsEnabled = false;
  dev.atsEnabled = false;
}

/** pci_restore_ats_state(): after a reset, re-enable ATS at the device if software has it on. */
export function pciRestoreAtsState(dev: PciDev): void {
  if (!dev.atsEnabled) return;
  dev.ep.atsEnabled = true;
}
