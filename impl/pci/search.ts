/**
 * drivers/pci/search.c — pci_for_each_dma_alias(): the requester IDs a function's DMA can carry.
 */
import type { PciDev } from '../kernel.ts';

/**
 * pci_for_each_dma_alias(): `fn` on the function's own RID, then on each RID of its
 * dma_alias_mask (here at most one: the topology's `dmaAliasOf`), stopping at the first non-zero
 * return, which it returns. The walk up the bridges (a PCIe-to-PCI bridge taking ownership of
 * the requests) is not modelled apart: such an alias is given as `dmaAliasOf` as well.
 */
export function pciForEachDmaAlias<T>(
  pdev: PciDev,
  fn: (pdev: PciDev, alias: number, data: T) => number,
  data: T,
): number {
  // pci_dev_id(): the requester ID; bus 0 and devfn = the function's index here
  const ret = fn(pdev, pdev.index, data);
  if (ret) return ret;
  if (pdev.dmaAlias !== null) return fn(pdev, pdev.dmaAlias.index, data);
  return 0;
}
