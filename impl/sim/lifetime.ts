/**
 * Tracked object lifetimes: objects the kernel frees (group devices, masters, groups) carry a
 * freed mark; touching a freed one is a use-after-free violation, never a silent read.
 */
import type { Machine } from './machine.ts';

export class Tracked {
  freed = false;
  constructor(readonly what: string) {}
}

export function kfree(obj: Tracked): void {
  obj.freed = true;
}

/** Dereference `obj`: records a use-after-free if it was freed. Returns whether it is alive. */
export function use(m: Machine, obj: Tracked, where: string): boolean {
  if (obj.freed) {
    m.violate('no-use-after-free', `use-after-free: ${where} touches freed ${obj.what}`);
    return false;
  }
  return true;
}
