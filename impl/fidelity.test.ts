import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';
import { fidelityRows, fidelityTable } from './fidelity.ts';

const implDir = fileURLToPath(new URL('.', import.meta.url));

test('impl/README.md carries the current fidelity table', () => {
  expect(readFileSync(new URL('./README.md', import.meta.url), 'utf8')).toContain(fidelityTable(implDir));
});

test('every catalog flag branches in some kernel function, and the functions the patches touch are listed', () => {
  const rows = fidelityRows(implDir);
  const kernel = rows.map((r) => r.kernel);
  for (const fn of [
    'pci_dev_reset_iommu_prepare',
    'pci_dev_reset_iommu_done',
    '__iommu_group_block_device',
    'iommu_report_device_broken',
    'iommu_group_broken_worker',
    'arm_smmu_cmdq_issue_cmdlist',
    'arm_smmu_gerror_handler',
    'arm_smmu_cmdq_err_handler',
    'arm_smmu_cmdq_batch_retry',
    'arm_smmu_write_ste',
    'arm_smmu_reset_device_done',
    'pci_ats_supported',
    'pci_prepare_ats',
    'arm_smmu_master_prepare_ats',
    'arm_smmu_enable_ats',
  ]) {
    expect(kernel).toContain(fn);
  }
  const flagged = new Set(rows.flatMap((r) => r.flags));
  for (const flag of [
    'done-ignores-result',
    'late-isr-misclassified',
    'eats-lost-update',
    'blame-first-sid',
    'unplug-leaks-recovery-cnt',
    'enable-ats-failure-desync',
    'vf-ats-ignores-pf-quirk',
    'vf-stu-unchecked',
  ]) {
    expect(flagged).toContain(flag);
  }
});
