// Host tools the VM tier needs: QEMU, and a statically linked busybox for the guest's userland.
// Missing ones are installed from the machine's apt, saying so first.
import { existsSync, readFileSync } from "node:fs";
import { run, which } from "./proc.ts";

export interface HostTools {
  qemu: string;
  busybox: string;
}

const BUSYBOX_PATHS = ["/bin/busybox", "/usr/bin/busybox"];
const PACKAGES = { qemu: "qemu-system-x86", busybox: "busybox-static" } as const;

/** An ELF with no PT_INTERP program header runs without a dynamic loader, i.e. is static. */
export function isStaticElf(path: string): boolean {
  const elf = readFileSync(path);
  if (elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2) return false;
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const phentsize = elf.readUInt16LE(0x36);
  const phnum = elf.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) {
    if (elf.readUInt32LE(phoff + i * phentsize) === 3 /* PT_INTERP */) return false;
  }
  return true;
}

function findQemu(): string | undefined {
  return which("qemu-system-x86_64");
}

function findStaticBusybox(): string | undefined {
  return BUSYBOX_PATHS.find((p) => existsSync(p) && isStaticElf(p));
}

/** Finds QEMU and static busybox, installing the packages that provide them when absent. */
export async function ensureTools(log: (line: string) => void, deadline?: number): Promise<HostTools> {
  const needed: string[] = [];
  if (!findQemu()) needed.push(PACKAGES.qemu);
  if (!findStaticBusybox()) needed.push(PACKAGES.busybox);
  if (needed.length) await aptInstall(needed, log, deadline);
  const qemu = findQemu();
  const busybox = findStaticBusybox();
  if (!qemu) throw new Error(`qemu-system-x86_64 not found after installing ${PACKAGES.qemu}`);
  if (!busybox)
    throw new Error(`no static busybox in ${BUSYBOX_PATHS.join(" or ")} after installing ${PACKAGES.busybox}`);
  return { qemu, busybox };
}

async function aptInstall(packages: string[], log: (line: string) => void, deadline?: number): Promise<void> {
  if (process.getuid?.() !== 0) {
    throw new Error(`missing ${packages.join(", ")}; install them: sudo apt-get install ${packages.join(" ")}`);
  }
  const install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", ...packages];
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  log(`installing ${packages.join(", ")}: ${install.join(" ")}`);
  let result = await run(install, { env, deadline });
  if (result.code !== 0) {
    // The usual cause is package lists older than the archive (or none at all, on a fresh image).
    log(`install failed (${lastLine(result.stderr)}); running apt-get update, then installing again`);
    const update = await run(["apt-get", "update", "-q"], { env, deadline });
    if (update.code !== 0)
      throw new Error(
        `apt-get update failed (no network or no reachable archive?), so ${packages.join(", ")} cannot be installed:\n${update.stderr.trim()}`,
      );
    result = await run(install, { env, deadline });
  }
  if (result.code !== 0) throw new Error(`${install.join(" ")} failed:\n${result.stderr.trim()}`);
}

function lastLine(text: string): string {
  return text.trim().split("\n").pop() ?? "";
}
