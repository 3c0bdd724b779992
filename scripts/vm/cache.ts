// Where downloaded kernels, private apt state and built initramfs images live between runs.
import { homedir } from "node:os";
import { join } from "node:path";
import { existsSync, mkdirSync, readdirSync, rmSync } from "node:fs";

/** BUN_URING_VM_CACHE, else $XDG_CACHE_HOME/bun-uring/vm, else ~/.cache/bun-uring/vm. */
export function defaultCacheDir(env: Record<string, string | undefined> = process.env): string {
  if (env.BUN_URING_VM_CACHE) return env.BUN_URING_VM_CACHE;
  const base = env.XDG_CACHE_HOME || join(homedir(), ".cache");
  return join(base, "bun-uring", "vm");
}

/** mkdir -p that returns the path, so callers can build and create in one expression. */
export function ensureDir(path: string): string {
  mkdirSync(path, { recursive: true });
  return path;
}

/** Drops a kernel release no suite uses any more: its extracted tree and its initramfs bases. */
export function pruneRelease(cacheDir: string, release: string): void {
  rmSync(join(cacheDir, "kernels", release), { recursive: true, force: true });
  const initramfs = join(cacheDir, "initramfs");
  if (!existsSync(initramfs)) return;
  for (const name of readdirSync(initramfs)) {
    if (name.startsWith(`base-${release}-`)) rmSync(join(initramfs, name), { force: true });
  }
}
