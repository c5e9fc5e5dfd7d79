/**
 * Physical pages. Unmapping returns a page to the allocator, which hands out the lowest free
 * page next, so a freed page is soon someone else's. A write to a page that is not mapped at
 * that IOVA in the writer's domain is data corruption.
 */
export interface PageOwner {
  domain: number;
  iova: number;
}

export class Memory {
  readonly owner: Array<PageOwner | null>;
  constructor(readonly npages: number) {
    this.owner = Array.from({ length: npages }, () => null);
  }

  alloc(domain: number, iova: number): number {
    const p = this.owner.indexOf(null);
    if (p < 0) return -1;
    this.owner[p] = { domain, iova };
    return p;
  }

  free(page: number): void {
    this.owner[page] = null;
  }

  ownedBy(page: number, domain: number, iova: number): boolean {
    const o = this.owner[page];
    return o != null && o.domain === domain && o.iova === iova;
  }

  describe(page: number): string {
    const o = this.owner[page];
    return o == null ? 'free' : `domain ${o.domain} iova ${o.iova}`;
  }
}
