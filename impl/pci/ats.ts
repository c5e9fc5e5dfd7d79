/** drivers/pci/ats.c — the ATS capability as the IOMMU drivers see it. */
import { EBUSY, EINVAL, type Kernel, type PciDev } from '../kernel.ts';

/** pci_ats_supported(): ATS capability present (and the device trusted). */
export function pciAtsSupported(dev: PciDev): boolean {
  return dev.atsCap;
}

/** pci_enable_ats() */
export function pciEnableAts(k: Kernel, dev: PciDev): number {
  if (!pciAtsSupported(dev)) return EINVAL;
  if (k.m.warnOn(dev.atsEnabled, `pci_enable_ats: ATS already enabled on ${dev.name}`)) return EBUSY;
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
