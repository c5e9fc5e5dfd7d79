/** SMMUv3 commands as the queue holds them (only the fields this harness needs). */
export type Cmd =
  | { readonly op: 'CMD_SYNC' }
  | { readonly op: 'ATC_INV'; readonly sid: number; readonly iova: number; readonly all: boolean }
  | { readonly op: 'CFGI_STE'; readonly sid: number }
  | { readonly op: 'TLBI'; readonly domain: number; readonly iova: number; readonly all: boolean };

export const CMD_SYNC: Cmd = { op: 'CMD_SYNC' };

export function fmtCmd(c: Cmd): string {
  switch (c.op) {
    case 'CMD_SYNC':
      return 'CMD_SYNC';
    case 'ATC_INV':
      return `ATC_INV sid ${c.sid}${c.all ? ' all' : ` iova ${c.iova}`}`;
    case 'CFGI_STE':
      return `CFGI_STE sid ${c.sid}`;
    case 'TLBI':
      return `TLBI domain ${c.domain}${c.all ? ' all' : ` iova ${c.iova}`}`;
  }
}
