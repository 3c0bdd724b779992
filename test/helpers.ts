// Shared test helpers: gated tests that print why they skip, and small kernel-capability checks.
import { test, describe } from "bun:test";
import { kernelAtLeast, kernelRelease, supportedSetupFlags } from "../src/ring/kernel.ts";

const printed = new Set<string>();

function announce(name: string, reason: string): void {
  const line = `skip: ${name} — ${reason}`;
  if (!printed.has(line)) {
    printed.add(line);
    console.log(line);
  }
}

/** `test` that runs only when `reason` is null; otherwise prints the reason and skips. The reason
 * also goes into the test name so the runner's report shows it. */
export function testIf(
  reason: string | null,
  name: string,
  fn: () => unknown | Promise<unknown>,
  timeoutMs?: number,
): void {
  if (reason === null) {
    test(name, fn as () => void, timeoutMs);
  } else {
    announce(name, reason);
    test.skip(`${name} [skipped: ${reason}]`, () => {});
  }
}

/** `describe` that runs only when `reason` is null; otherwise prints the reason and skips. */
export function describeIf(reason: string | null, name: string, fn: () => void): void {
  if (reason === null) {
    describe(name, fn);
  } else {
    announce(name, reason);
    describe.skip(`${name} [skipped: ${reason}]`, fn);
  }
}

/** null when the kernel is at least `version`, else the reason to skip. */
export function needKernel(version: string, what: string): string | null {
  return kernelAtLeast(version) ? null : `${what} needs Linux ${version}+, this kernel is ${kernelRelease()}`;
}

/** null when the kernel accepts setup flag `flag`, else the reason. */
export function needSetupFlag(flag: number, name: string, version: string): string | null {
  return supportedSetupFlags() & flag
    ? null
    : `IORING_SETUP_${name} needs Linux ${version}+, this kernel is ${kernelRelease()}`;
}

/** null when running as root (or with the capability the test needs), else the reason. */
export function needRoot(what: string): string | null {
  return process.getuid?.() === 0 ? null : `${what} needs root (CAP_NET_ADMIN)`;
}

/** null when `name` is set in the environment, else the reason. */
export function needEnv(name: string, what: string): string | null {
  return process.env[name] ? null : `${what} needs ${name} to be set`;
}
