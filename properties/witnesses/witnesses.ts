/**
 * Hand-written minimal witnesses: for each catalog flag, a scenario that fails the expected
 * property under the flag and passes under v4. They document each bug in a form a reviewer
 * reads in a minute.
 */
import type { Topology } from '../../impl/system.ts';
import type { Scenario } from '../scenario.ts';

export interface Witness {
  readonly flag: string;
  readonly property: string;
  readonly why: string;
  readonly scenario: Scenario;
}

const oneDevice = (over: Partial<Topology> = {}): Topology => ({
  cpus: 1,
  devices: [{ ats: true, sids: 1 }],
  gerrorIrqCpu: 0,
  queueShift: 3,
  batchEntries: 3,
  atcTimeoutUs: 50_000,
  iovas: 1,
  ...over,
});

export const WITNESSES: readonly Witness[] = [
  {
    flag: 'done-ignores-result',
    property: 'quarantine-lifted-only-by-reset',
    why: 'the hung device is quarantined as broken; its FLR fails, yet done() unblocks it',
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
    scenario: {
      topology: oneDevice(),
      rounds: [
        [{ kind: 'dma', dev: 0, iova: 0 }],
        [{ kind: 'hang', dev: 0 }],
        [{ kind: 'unmap', cpu: 0, domain: 0, iova: 0 }],
        [{ kind: 'map', cpu: 0, domain: 0, iova: 1 }],
        [{ kind: 'dma', dev: 0, iova: 0 }],
      ],
      choices: [],
    },
  },
];
