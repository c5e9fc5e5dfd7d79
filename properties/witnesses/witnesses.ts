/**
 * Minimal witnesses: for each catalog flag, a scenario that fails under the flag and passes
 * under v4 (the test checks both). They document each bug in a form a reviewer reads in a
 * minute. `origin` says whether it was written by hand from the mechanism, or first found by
 * the harness's generic search and then reduced and explained by hand.
 */
import type { Topology } from '../../impl/system.ts';
import { V4_FIXED } from '../../impl/variants.ts';
import type { Base } from '../catalog.ts';
import type { Scenario } from '../scenario.ts';

export interface Witness {
  readonly flag: string;
  readonly property: string;
  readonly why: string;
  readonly origin: 'by hand' | 'found, then reduced by hand' | 'found by the harness, explained by hand';
  readonly scenario: Scenario;
}

export const oneDevice = (over: Partial<Topology> = {}): Topology => ({
  cpus: 1,
  devices: [{ ats: true, sids: 1 }],
  gerrorIrqCpu: 0,
  queueShift: 3,
  batchEntries: 3,
  atcTimeoutUs: 50_000,
  iovas: 1,
  ...over,
});

/**
 * dev1 hangs; an unmap's invalidation to it is still in flight when its FLR works: the retry's
 * broken report races the reset's done() (two flags break that race in two places).
 */
const RESET_RACES_BROKEN_REPORT: Scenario = {
  topology: {
    cpus: 2,
    devices: [
      { ats: true, sids: 1, quirk: false },
      { ats: true, sids: 1, quirk: true },
      { ats: true, sids: 1, quirk: false },
    ],
    gerrorIrqCpu: 0,
    queueShift: 3,
    batchEntries: 3,
    atcTimeoutUs: 50_000,
    iovas: 2,
  },
  rounds: [
    [
      { kind: 'hang', dev: 1 },
      { kind: 'attach', cpu: 0, dev: 0, domain: 1 },
    ],
    [
      { kind: 'unmap', cpu: 0, domain: 0, iova: 0 },
      { kind: 'attach', cpu: 1, dev: 0, domain: 0 },
      { kind: 'reset', cpu: 1, dev: 1, outcome: 'ok' },
    ],
  ],
  choices: [],
  // [47, 121] until the thirteenth session, when the unref's drain added scheduling decisions.
  pct: { priorities: [], changes: [47, 99] },
};

/**
 * A hung device's ATC still maps iova 0 when it is unmapped and its page reused: what a lost ATC
 * timeout costs (late-isr-misclassified; atc-bit-cleared-after-publish;
 * completion-timeout-exceeds-poll).
 */
const STALE_ATC_AFTER_REUSE: Scenario = {
  topology: oneDevice({ iovas: 2 }),
  rounds: [
    [{ kind: 'dma', dev: 0, iova: 0 }],
    [{ kind: 'hang', dev: 0 }],
    [{ kind: 'unmap', cpu: 0, domain: 0, iova: 0 }],
    [{ kind: 'map', cpu: 0, domain: 0, iova: 1 }],
    [{ kind: 'dma', dev: 0, iova: 0 }],
  ],
  choices: [],
};

/** dev1 is a VF of dev0, which has no ATS capability: the VF's STU can never match its PF's. */
const VF_WITHOUT_PF_STU: Scenario = {
  topology: oneDevice({
    devices: [
      { ats: false, sids: 1 },
      { ats: true, sids: 1, pf: 0 },
    ],
  }),
  rounds: [[{ kind: 'dma', dev: 1, iova: 0 }]],
  choices: [],
};

export const WITNESSES: readonly Witness[] = [
  {
    flag: 'enable-ats-failure-desync',
    property: 'refinement',
    why: 'dev1 is a VF of dev0, which has no ATS, so no STU: without the probe-time prepare the VF probes, its pci_enable_ats() fails at attach, and the driver counts ATS as on',
    origin: 'by hand',
    scenario: VF_WITHOUT_PF_STU,
  },
  {
    flag: 'vf-stu-unchecked',
    property: 'no-unexpected-warn',
    why: "pci_prepare_ats() lets the VF through although its PF's STU (none) differs: pci_enable_ats() fails at attach, which v4 WARNs about as a kernel bug",
    origin: 'by hand',
    scenario: VF_WITHOUT_PF_STU,
  },
  {
    flag: 'vf-ats-ignores-pf-quirk',
    property: 'refinement',
    why: 'dev0 is quirked to have no ATS; its VF still looks ATS-capable, so the probe prepares ATS, finds no PF STU and fails: the VF loses its IOMMU instead of running without ATS',
    origin: 'by hand',
    scenario: {
      topology: oneDevice({
        devices: [
          { ats: true, sids: 1, noAts: true },
          { ats: true, sids: 1, pf: 0 },
        ],
      }),
      rounds: [[{ kind: 'dma', dev: 1, iova: 0 }]],
      choices: [],
    },
  },
  {
    flag: 'done-ignores-result',
    property: 'quarantine-lifted-only-by-reset',
    why: 'the hung device is quarantined as broken; its FLR fails, yet done() unblocks it',
    origin: 'by hand',
    scenario: {
      topology: oneDevice(),
      rounds: [
        [{ kind: 'hang', dev: 0 }],
        [{ kind: 'unmap', cpu: 0, domain: 0, iova: 0 }],
        [{ kind: 'reset', cpu: 0, dev: 0, outcome: 'fail' }],
      ],
      choices: [],
    },
  },
  {
    flag: 'late-isr-misclassified',
    property: 'no-corruption',
    why:
      'the GERROR IRQ targets the issuing CPU, which polls with IRQs off: its CMD_SYNC poll times out first, ' +
      'the ATC timeout is taken for a plain timeout, the page is freed and the stale ATC entry is used',
    origin: 'by hand',
    scenario: { ...STALE_ATC_AFTER_REUSE, topology: oneDevice() },
  },
  {
    flag: 'stale-atc-timeout-bit',
    property: 'availability',
    why:
      'dev1 hangs; the attach and the unmap queue CMD_SYNCs behind its failing ones while cpu1, the GERROR ' +
      "IRQ's CPU, polls with IRQs off: their issuers time out first and the late skips set their slots' " +
      "ATC-timeout bits; after wrap-around healthy dev0's attach reuses those slots, finds the old bits and " +
      'dev0 is quarantined as broken',
    origin: 'found, then reduced by hand',
    scenario: {
      topology: oneDevice({
        cpus: 2,
        devices: [
          { ats: true, sids: 1 },
          { ats: true, sids: 2 },
        ],
        gerrorIrqCpu: 1,
      }),
      rounds: [
        [
          { kind: 'hang', dev: 1 },
          { kind: 'attach', cpu: 1, dev: 1, domain: 1 },
          { kind: 'unmap', cpu: 0, domain: 0, iova: 0 },
        ],
        [{ kind: 'attach', cpu: 0, dev: 0, domain: 1 }],
      ],
      choices: [],
    },
  },
  {
    flag: 'atc-bit-cleared-after-publish',
    property: 'no-corruption',
    why:
      'cpu0 unmaps iova 0 of hung dev0 and publishes its CMD_SYNC (PROD write); the SMMU sends the ATC_INV ' +
      'and waits, and cpu0 stalls (choice 4) for the 50 ms completion timeout; the CMD_SYNC fails, the ' +
      "GERROR handler on cpu1 sets the slot's ATC-timeout bit (choices 5-8), then cpu0 resumes and its late " +
      'clear wipes it: the refetched CMD_SYNC completes, the unmap sees success, the page is freed and reused, ' +
      'and the stale ATC entry is used',
    origin: 'by hand',
    scenario: {
      ...STALE_ATC_AFTER_REUSE,
      topology: oneDevice({ cpus: 2, gerrorIrqCpu: 1, iovas: 2, stalls: true }),
      // 1-3: the SMMU runs before cpu0 (TLBI, ATC_INV, wait); 4: the stall; 5: the SMMU fails the
      // CMD_SYNC; 6-8: the GERROR interrupt is taken and its handler runs up to GERRORN.
      choices: [1, 1, 1, 1, 1, 1, 1, 1],
    },
  },
  {
    flag: 'full-queue-stall',
    property: 'no-livelock',
    why:
      "the hung device's CMD_SYNC keeps failing when refetched (the choices) after its issuers have left; " +
      'the broken worker, holding ats_broken_lock with IRQs off on cpu0 where the GERROR IRQ is affine, finds ' +
      'the 4-entry queue full behind it and polls for room without draining CMDQ_ERR: nothing ever skips the error',
    origin: 'found, then reduced by hand',
    scenario: {
      topology: oneDevice({ queueShift: 2, batchEntries: 2 }),
      rounds: [[{ kind: 'hang', dev: 0 }], [{ kind: 'unmap', cpu: 0, domain: 0, iova: 0 }]],
      choices: [0, 0, 1, 0, 1, 0, 0, 1, 1, 1, 1],
    },
  },
  {
    flag: 'master-freed-under-rcu',
    property: 'no-use-after-free',
    why:
      "the unmap walks domain 0's array A and its per-SID retry spends about 1 s on the hung dev0; " +
      'dev2 joins domain 0 again, which publishes array B without draining A (a merge: nothing leaves), ' +
      "dev1's unplug drains only B and, without the grace period, frees dev1's master, which the retry " +
      "then reads through A's inv->master (until the thirteenth session the witness moved dev0 away " +
      "while the unmap walked A, which arm_smmu_invs_unref()'s write lock drains)",
    origin: 'found, then reduced by hand',
    scenario: {
      topology: {
        cpus: 3,
        devices: [
          { ats: true, sids: 1 },
          { ats: true, sids: 1 },
          { ats: true, sids: 1 },
        ],
        gerrorIrqCpu: 2,
        queueShift: 4,
        batchEntries: 3,
        atcTimeoutUs: 50_000,
        iovas: 1,
      },
      rounds: [
        [
          { kind: 'hang', dev: 0 },
          { kind: 'attach', cpu: 0, dev: 2, domain: 1 },
        ],
        [
          { kind: 'unmap', cpu: 0, domain: 0, iova: 0 },
          { kind: 'attach', cpu: 1, dev: 2, domain: 0 },
          { kind: 'unplug', cpu: 2, dev: 1 },
        ],
      ],
      choices: [],
    },
  },
  {
    flag: 'no-reset-device-done',
    property: 'liveness-after-reset',
    why:
      "the reset prepare flushes the hung device's ATC, which times out and marks it ats_broken; the FLR " +
      'works, but the driver is never told, so the re-attach keeps ATS off for good',
    origin: 'found, then reduced by hand',
    scenario: {
      topology: oneDevice({ cpus: 2, queueShift: 4, atcTimeoutUs: 200_000, iovas: 2 }),
      rounds: [[{ kind: 'hang', dev: 0 }], [{ kind: 'reset', cpu: 0, dev: 0, outcome: 'ok' }]],
      choices: [],
    },
  },
  {
    flag: 'eats-lost-update',
    property: 'no-eats-while-ats-broken',
    why:
      'an attach preempted before its STE write resumes after the broken path cleared EATS and set ' +
      'ats_broken: without ats_broken_lock and the EATS mask, it writes EATS=1 back',
    origin: 'found, then reduced by hand',
    scenario: {
      topology: oneDevice({ devices: [{ ats: true, sids: 2 }], queueShift: 4, batchEntries: 4 }),
      rounds: [
        [{ kind: 'hang', dev: 0 }],
        [
          { kind: 'attach', cpu: 0, dev: 0, domain: 1 },
          { kind: 'unmap', cpu: 0, domain: 0, iova: 0 },
        ],
      ],
      choices: [],
    },
  },
  {
    flag: 'async-batch-flush',
    property: 'refinement',
    why:
      'the full batch [TLBI, ATC_INV dev0, ATC_INV dev1] is flushed without a CMD_SYNC; the timeout of dev0 ' +
      "surfaces at the next batch's CMD_SYNC, whose retry only re-issues dev1's second stream ID: nobody " +
      'is blamed and the hung dev0 keeps ATS',
    origin: 'found, then reduced by hand',
    scenario: {
      topology: {
        cpus: 1,
        devices: [
          { ats: true, sids: 1 },
          { ats: true, sids: 2 },
        ],
        gerrorIrqCpu: 0,
        queueShift: 2,
        batchEntries: 3,
        atcTimeoutUs: 200_000,
        iovas: 3,
      },
      rounds: [[{ kind: 'hang', dev: 0 }], [{ kind: 'unmap', cpu: 0, domain: 0, iova: 0 }]],
      choices: [],
    },
  },
  {
    flag: 'blame-first-sid',
    property: 'availability',
    why: 'dev1 hangs; the batch times out and, with no per-stream-ID retry, the first ATS stream ID (healthy dev0) takes the blame',
    origin: 'by hand',
    scenario: {
      topology: {
        cpus: 1,
        devices: [
          { ats: true, sids: 1 },
          { ats: true, sids: 1 },
        ],
        gerrorIrqCpu: 0,
        queueShift: 4,
        batchEntries: 3,
        atcTimeoutUs: 50_000,
        iovas: 1,
      },
      rounds: [[{ kind: 'hang', dev: 1 }], [{ kind: 'unmap', cpu: 0, domain: 0, iova: 0 }]],
      choices: [],
    },
  },
  {
    flag: 'inv-during-flr',
    property: 'refinement',
    why: 'with no IOMMU fence around the reset, a failed FLR leaves the device on its domain with ATS on instead of blocked',
    origin: 'found, then reduced by hand',
    scenario: {
      topology: oneDevice({ devices: [{ ats: true, sids: 2 }], queueShift: 4 }),
      rounds: [[{ kind: 'reset', cpu: 0, dev: 0, outcome: 'fail' }]],
      choices: [],
    },
  },
  {
    flag: 'unplug-leaks-recovery-cnt',
    property: 'recovery-cnt-matches',
    why: 'a device blocked by a failed reset is unplugged; its group keeps recovery_cnt = 1 with no blocked device left',
    origin: 'by hand',
    scenario: {
      topology: oneDevice(),
      rounds: [[{ kind: 'reset', cpu: 0, dev: 0, outcome: 'fail' }], [{ kind: 'unplug', cpu: 0, dev: 0 }]],
      choices: [],
    },
  },
  {
    flag: 'atc-inv-to-broken',
    property: 'bounded-atc-errors',
    why:
      'once dev0 is marked broken, an unmap and an attach keep sending it ATC invalidations: every one times ' +
      'out again, five in one episode',
    origin: 'found, then reduced by hand',
    scenario: {
      topology: {
        cpus: 3,
        devices: [
          { ats: true, sids: 1 },
          { ats: false, sids: 2 },
        ],
        gerrorIrqCpu: 0,
        queueShift: 4,
        batchEntries: 2,
        atcTimeoutUs: 200_000,
        iovas: 2,
      },
      rounds: [
        [{ kind: 'hang', dev: 0 }],
        [
          { kind: 'unmap', cpu: 0, domain: 0, iova: 0 },
          { kind: 'attach', cpu: 1, dev: 0, domain: 1 },
        ],
      ],
      choices: [],
    },
  },
  {
    flag: 'probe-blocks-iommu',
    property: 'reset-fence-only-in-reset',
    why: 'probing the reset methods (sysfs) runs the quirk method with PCI_RESET_PROBE, and the bug fences the device as if resetting it',
    origin: 'by hand',
    scenario: {
      topology: oneDevice({ devices: [{ ats: true, sids: 1, quirk: true }] }),
      rounds: [[{ kind: 'probe', cpu: 0, dev: 0 }]],
      choices: [],
    },
  },
  {
    flag: 'flr-result-dropped',
    property: 'refinement',
    why:
      'the quirk method calls pcie_flr(), which fails, and reports success: done(0) lifts the fence of a device ' +
      'that did not reset, instead of keeping it blocked as reset_failed',
    origin: 'by hand',
    scenario: {
      topology: oneDevice({ devices: [{ ats: true, sids: 1, quirk: true }] }),
      rounds: [[{ kind: 'reset', cpu: 0, dev: 0, outcome: 'fail' }]],
      choices: [],
    },
  },
  {
    flag: 'stale-broken-report',
    property: 'liveness-after-reset',
    why:
      "dev0 hangs while the reset's prepare flushes its ATC: the flush times out, the retry marks dev0 " +
      'broken and queues the report; the FLR works and done() clears ats_broken but, with the bug, not ' +
      'broken_pending, so the worker then quarantines the freshly reset device for good',
    origin: 'found by the harness, explained by hand',
    scenario: {
      topology: oneDevice({ queueShift: 2, batchEntries: 2, stalls: true }),
      rounds: [
        [
          { kind: 'hang', dev: 0 },
          { kind: 'reset', cpu: 0, dev: 0, outcome: 'ok' },
        ],
      ],
      choices: [],
      pct: { priorities: [5, 10, 20, 4, 0, 0, 17], changes: [] },
    },
  },
  {
    flag: 'reset-clears-broken-midway',
    property: 'liveness-after-reset',
    why:
      'reset_device_done() clears ats_broken (and done() broken_pending) without ats_broken_lock while the ' +
      "unmap's retry is between seeing the timeout and fencing dev1; the retry then sets ats_broken and " +
      'reports, and the worker quarantines the recovered device for good',
    origin: 'found by the harness, explained by hand',
    scenario: RESET_RACES_BROKEN_REPORT,
  },
];

/**
 * Catalog rows whose bug another patch of v4 masks in this model: no scenario fails under the
 * flag alone. Each says which patch closes the window and why, and names the catalog flags that
 * take that patch's code out (`unmaskedBy`): with them, the row has a witness like any other,
 * which fails under v4+unmaskedBy+flag and passes under v4+unmaskedBy, and which also passes
 * under v4+flag (the mask at work). The catalog searches these rows on v4+unmaskedBy. The flag
 * stays, so that a change to the masking patch (or a driver without it) shows the bug again.
 */
export interface Masked {
  readonly flag: string;
  readonly maskedBy: string;
  readonly unmaskedBy: readonly string[];
  readonly why: string;
  readonly witness: Omit<Witness, 'flag' | 'origin'>;
}

export const MASKED: readonly Masked[] = [
  {
    flag: 'ats-reenabled-while-broken',
    maskedBy: 'P23',
    unmaskedBy: ['eats-lost-update'],
    why:
      'an attach may re-enable ATS at the device and add ATS entries for a broken master, but ' +
      'arm_smmu_write_ste() clears EATS under ats_broken_lock, so translated requests stay aborted ' +
      'and ATC invalidations to the broken master are skipped (P18); the quarantine undoes both. ' +
      '(A 150 s differential search, about 500k scenarios, found nothing. In the third session the ' +
      "catalog counted it on 2 of 10 seeds, but both scenarios are v4's own finding reached through " +
      "the flag's different timing: the flag run reports an ATC timeout as a plain CMD_SYNC timeout " +
      '(findings.ts atcTimeoutReportedAsPlainTimeout), sync-queued-behind-failure.)',
    witness: {
      property: 'no-eats-while-ats-broken',
      why:
        "two attaches of the hung dev0, to domain 1 and back: the first one's ATC flush times out, its " +
        'per-SID retry marks dev0 broken and reports it; the second, waiting on the group mutex, runs ' +
        'before the broken work: arm_smmu_ats_supported() ignores ats_broken (the flag) and, without ' +
        'P23, arm_smmu_write_ste() no longer clears EATS for a broken master: STE.EATS=1 while ' +
        'ats_broken. Without the flag the second attach does not ask for ATS (found by the catalog ' +
        'search on v4+eats-lost-update, 10/10 seeds)',
      scenario: {
        topology: oneDevice(),
        rounds: [
          [
            { kind: 'hang', dev: 0 },
            { kind: 'attach', cpu: 0, dev: 0, domain: 1 },
            { kind: 'attach', cpu: 0, dev: 0, domain: 0 },
          ],
        ],
        choices: [],
      },
    },
  },
  {
    flag: 'broken-work-uaf',
    maskedBy: 'P17, P23',
    unmaskedBy: ['master-freed-under-rcu', 'eats-lost-update'],
    why:
      'a report must find the group device before list_del_rcu() and queue the work after the ' +
      "teardown's cancel. v4 closes that window twice: arm_smmu_release_device() calls " +
      'synchronize_rcu() (P17) between the two, inside iommu_deinit_device(), which waits for the ' +
      "reporter's RCU section; and the reporter runs under master->ats_broken_lock, which the " +
      "release's STE write takes too (P23). So the work is queued before the cancel and cancelled. " +
      '(Fifth session, a targeted search: with either patch in, the cancel never came before ' +
      'schedule_work() in about 3,700 schedules where the lookup came first, nor in 11,400 with any ' +
      'third flag instead; with both out, the witness below.)',
    witness: {
      property: 'no-use-after-free',
      why:
        "the unmap's retry times out on the hung dev0 and, under ats_broken_lock, reports it. dev1, a " +
        'device without ATS that the first round moved to domain 1, joins domain 0 again on cpu1: the ' +
        "merge publishes a new invs array while the unmap still holds the old one's read lock, and " +
        "its CFGI_STE sync waits behind the retry's ATC_INV (the unmap needs four deadlines and a " +
        "round allows three stalls). Once the RCU lookup has found dev0's group device (a PCT change " +
        'point, CPU stalls), the unplug runs: list_del_rcu(), a release whose drain takes the new ' +
        "array's write lock (so it does not wait for the unmap), that neither waits for the lock (no " +
        "P23) nor for the reporter's RCU section (no P17), and cancel_work_sync() (the flag) before " +
        "the reporter's schedule_work(); P08's grace period waits for the reporter, not for the work, " +
        'so kfree(gdev) comes first and the broken worker touches the freed group device. With ' +
        'disable_work_sync() the late schedule_work() is refused. (Twelfth session: the old witness ' +
        "re-attached dev0 to its own domain, which Linux's core never passes to the driver.)",
      scenario: {
        topology: oneDevice({
          cpus: 2,
          batchEntries: 2,
          stalls: true,
          devices: [
            { ats: true, sids: 1 },
            { ats: false, sids: 1 },
          ],
        }),
        rounds: [
          [
            { kind: 'hang', dev: 0 },
            { kind: 'attach', cpu: 0, dev: 1, domain: 1 },
          ],
          [
            { kind: 'unmap', cpu: 0, domain: 0, iova: 0 },
            { kind: 'attach', cpu: 1, dev: 1, domain: 0 },
            { kind: 'unplug', cpu: 1, dev: 0 },
          ],
        ],
        choices: [],
        pct: { priorities: [0, 0, 5, 2, 2, 2, 6], changes: [93] },
      },
    },
  },
];

/**
 * On v4 with its own findings fixed (`v4-fixed`, impl/variants.ts FIXES), a flag's bug may need
 * another scenario: the fixes change what happens after a CMD_SYNC poll times out (an issuer
 * waits for its own CMD_SYNC) and what a reset's prepare waits for. Every witness above also fails with its
 * flag on v4-fixed and passes there without it, except those replaced here and those in
 * NOT_ON_FIXED. (Found by targeted searches and `npm run catalog -- --base v4-fixed`, fourth
 * session.)
 */
export const ON_FIXED: readonly Omit<Witness, 'origin'>[] = [
  {
    flag: 'stale-atc-timeout-bit',
    property: 'refinement',
    why:
      "dev0's ATC timeout sets its slot's bit; the issuer reads it (-EIO) and the slot is reused by a " +
      "later batch for dev1 without clearing it: the healthy dev1 is blamed and quarantined (v4's " +
      'witness reached the stale bit through a plain timeout, which the fixed issuer no longer takes)',
    scenario: {
      topology: {
        cpus: 1,
        devices: [
          { ats: true, sids: 1, quirk: false },
          { ats: true, sids: 1, quirk: false },
        ],
        gerrorIrqCpu: 0,
        queueShift: 2,
        batchEntries: 3,
        atcTimeoutUs: 50_000,
        iovas: 1,
      },
      rounds: [
        [
          { kind: 'hang', dev: 0 },
          { kind: 'unmap', cpu: 0, domain: 0, iova: 0 },
        ],
      ],
      choices: [1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 1],
    },
  },
  {
    flag: 'atc-inv-to-broken',
    property: 'bounded-atc-errors',
    why:
      'two unmaps and an attach of the hung dev0 to domain 1: with the flag each keeps sending ' +
      "ATC_INV to the broken master, and five CMD_SYNCs fail on it (v4's 3-operation witness got " +
      'there faster through plain timeouts)',
    scenario: {
      topology: oneDevice({ cpus: 2, queueShift: 2, batchEntries: 2, iovas: 2 }),
      rounds: [
        [{ kind: 'hang', dev: 0 }],
        [
          { kind: 'unmap', cpu: 0, domain: 0, iova: 0 },
          { kind: 'unmap', cpu: 1, domain: 0, iova: 1 },
          { kind: 'attach', cpu: 1, dev: 0, domain: 1 },
        ],
      ],
      choices: [],
    },
  },
  {
    flag: 'full-queue-stall',
    property: 'no-livelock',
    why:
      "one failing CMD_SYNC is enough when a batch needs the whole ring: cpu1's unmap fills the 4-entry " +
      "VCMDQ (TLBI, 2 ATC_INV, CMD_SYNC) for the hung dev0; its per-SID retry's CMD_SYNC fails, the issuer " +
      'sees its own ATC timeout and leaves (as a fixed issuer should), and each skip makes the VCMDQ ' +
      "refetch that CMD_SYNC, which fails again. cpu0's unmap holds domain 0's invs read lock and needs " +
      'all 4 slots, so it polls for room, without draining CMDQ_ERR (the flag), while the broken worker ' +
      "on cpu1, where the VCMDQ's IRQ is affine, waits with IRQs off in write_lock_irqsave() for that " +
      'read lock (arm_smmu_invs_unref, the fence): nothing skips the error. It needs the VCMDQ: on ' +
      'the main queue the STE updates for the broken master queue behind the failing CMD_SYNC and their ' +
      'own CMD_SYNC poll skips the error (0 of 5,000 schedules of this shape fail without it). Found by ' +
      '`npm run catalog -- --base v4-fixed --flag full-queue-stall` (fifteenth session, seed 1), as found',
    scenario: {
      topology: oneDevice({
        cpus: 2,
        devices: [{ ats: true, sids: 2 }],
        queueShift: 2,
        iovas: 2,
        vcmdq: { irqCpu: 1 },
      }),
      rounds: [
        [
          { kind: 'hang', dev: 0 },
          { kind: 'unmap', cpu: 1, domain: 0, iova: 0 },
          { kind: 'unmap', cpu: 0, domain: 0, iova: 1 },
        ],
      ],
      // No choice can be dropped or lowered to 0 with the livelock kept (checked one by one).
      choices: [1, 1, 1, 1, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1],
    },
  },
];

/**
 * Flags whose bug no search reached on v4-fixed, and why (fourth session). reset-clears-broken-midway
 * was here until the ninth session, when the catalog's search found it by another race (ON_FIXED),
 * and is again since the twelfth, whose fix closed that race (fixes.test.ts keeps it).
 * full-queue-stall was here until the fifteenth session: its reason (the livelock needs a queue
 * full of orphans, which only v4's plain timeout leaves) was wrong, since one refetched CMD_SYNC
 * fills a ring that a batch needs whole (ON_FIXED); the saved catalog find showed it.
 */
export const NOT_ON_FIXED: readonly { readonly flag: string; readonly why: string }[] = [
  {
    flag: 'reset-clears-broken-midway',
    why:
      "done() must clear ats_broken while an invalidation's retry still holds the device's " +
      'ats_broken_lock and is about to set it: an invalidation in flight across the reset. On ' +
      'v4-fixed the prepare waits a grace period after blocking the device (fix-prepare-grace-period), so ' +
      'every invalidation that could reach it has ended before the reset starts, and a later one ' +
      'finds its ATS off. The ninth-session race that found the row here (an unplug replacing the ' +
      'array the unmap walks) was closed by that fix, and since the fifteenth session by the ' +
      "unplug's own unref fence, as in mainline (fixes.test.ts). Twelfth session: 0 of 6 " +
      'seeds of 20 s (`npm run catalog -- --base v4-fixed --flag reset-clears-broken-midway`)',
  },
];

export interface LimitWitness {
  readonly id: string;
  readonly source: string;
  readonly property: string;
  readonly why: string;
  /** null: no scenario of this model shows it (see why and impl/README.md). */
  readonly scenario: Scenario | null;
  /** The same scenario without the condition the limit needs: v4 passes it. */
  readonly control: Scenario | null;
}

export const LIMITS: readonly LimitWitness[] = [
  {
    id: 'completion-timeout-exceeds-poll',
    source: 'P12 FIXME',
    property: 'no-corruption',
    why:
      'the SMMU waits 2 s for the ATC invalidation, longer than the 1 s CMD_SYNC poll: the issuer returns ' +
      '-ETIMEDOUT with no bit set, the page is freed and reused, and the stale ATC entry is used',
    scenario: { ...STALE_ATC_AFTER_REUSE, topology: oneDevice({ atcTimeoutUs: 2_000_000, iovas: 2 }) },
    control: STALE_ATC_AFTER_REUSE,
  },
  {
    id: 'enotty-keeps-blocked',
    source: 'P04 FIXME',
    property: 'refinement',
    why:
      'dev0 has no FLR and an ACPI _RST whose evaluation fails: pci_dev_acpi_reset() fences the IOMMU, ' +
      'resets nothing and returns -ENOTTY, which done() must take for a failed reset: the healthy ' +
      'device stays blocked (reset_failed), where the model reverts the fence',
    scenario: {
      topology: oneDevice({ devices: [{ ats: true, sids: 1, flr: false, acpiRst: 'fails' }] }),
      rounds: [[{ kind: 'reset', cpu: 0, dev: 0, outcome: 'ok' }]],
      choices: [],
    },
    control: {
      topology: oneDevice({ devices: [{ ats: true, sids: 1, flr: true, acpiRst: 'fails' }] }),
      rounds: [[{ kind: 'reset', cpu: 0, dev: 0, outcome: 'ok' }]],
      choices: [],
    },
  },
  {
    id: 'sfm-kills-smmu',
    source: 'P13 (found by the harness; mainline too)',
    property: 'refinement',
    why:
      'after Service Failure Mode the SMMU stays disabled: nothing is consumed, a later ATC timeout ' +
      'is never reported, the issuer returns -ETIMEDOUT and the hung device is not quarantined ' +
      '(and a full queue spins its issuers: no-livelock); the default search does not inject SFM',
    scenario: {
      topology: oneDevice({ iovas: 3 }),
      rounds: [
        [{ kind: 'gerror', cause: 'sfm', delayUs: 0 }],
        [{ kind: 'hang', dev: 0 }],
        [{ kind: 'unmap', cpu: 0, domain: 0, iova: 0 }],
      ],
      choices: [],
    },
    control: {
      topology: oneDevice({ iovas: 3 }),
      rounds: [
        [{ kind: 'gerror', cause: 'evtq-abort', delayUs: 0 }],
        [{ kind: 'hang', dev: 0 }],
        [{ kind: 'unmap', cpu: 0, domain: 0, iova: 0 }],
      ],
      choices: [],
    },
  },
  {
    id: 'aer-recovery-unfenced',
    source:
      "P05/P11 (their changelog and comment count on AER; the review: 'We do need to push a pci error event')",
    property: 'liveness-after-reset',
    why:
      'the hung dev0 is quarantined (broken); AER recovery resets it by a secondary bus reset of its ' +
      'Port (pcie_do_recovery() -> pci_bus_error_reset()), which never calls pci_dev_reset_iommu_prepare()/' +
      'done(): reset_device_done() does not run, so the device answers again but stays blocked and ' +
      "ats_broken. The series' own text names AER as a recovery that lifts the quarantine; the " +
      'default search does not generate AER recoveries (impl/pci/pcie/err.ts)',
    scenario: {
      topology: oneDevice(),
      rounds: [
        [{ kind: 'hang', dev: 0 }],
        [{ kind: 'unmap', cpu: 0, domain: 0, iova: 0 }],
        [{ kind: 'aer', cpu: 0, dev: 0, outcome: 'ok' }],
      ],
      choices: [],
    },
    control: {
      topology: oneDevice(),
      rounds: [
        [{ kind: 'hang', dev: 0 }],
        [{ kind: 'unmap', cpu: 0, domain: 0, iova: 0 }],
        [{ kind: 'reset', cpu: 0, dev: 0, outcome: 'ok' }],
      ],
      choices: [],
    },
  },
  {
    id: 'dma-alias-premature-unblock',
    source: 'P04 FIXME',
    property: 'quarantine-lifted-only-by-reset',
    why:
      'cannot occur with this driver, and the harness shows it rather than assuming it: a DMA alias ' +
      "(topology dmaAliasOf) claims its target's stream IDs, as IORT gives a function every RID " +
      'pci_for_each_dma_alias() visits, and mainline arm_smmu_insert_master() (commit 2d00c34d665b) fails ' +
      "its probe with -ENODEV ('Aliasing StreamID ... unsupported'), so the alias gets no IOMMU and no " +
      'group, and group_device_dma_alias_is_blocked() (modelled, body reconstructed from the seed) never ' +
      'finds a blocked aliased sibling on random v4 scenarios (properties/dma-alias.test.ts). The FIXME ' +
      'belongs to IOMMUs that put aliases in one group (VT-d, AMD-Vi), or to SMMUv3 with an out-of-tree ' +
      'patch (2025-10) that accepts aliasing stream IDs; neither is modelled',
    scenario: null,
    control: null,
  },
];

/**
 * A catalog row's witness scenario, whatever kind of row it is: a flag's, a masked flag's (on its
 * unmasked base) or a known limit's (null: none in this model); undefined for an unknown id. On
 * v4-fixed, a flag's ON_FIXED witness where it has one.
 */
export const witnessOf = (id: string, base: Base = 'v4'): Scenario | null | undefined =>
  (base === V4_FIXED ? ON_FIXED.find((w) => w.flag === id)?.scenario : undefined) ??
  WITNESSES.find((w) => w.flag === id)?.scenario ??
  MASKED.find((m) => m.flag === id)?.witness.scenario ??
  LIMITS.find((l) => l.id === id)?.scenario;
