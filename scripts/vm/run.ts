// The VM tier's core: prepare kernel + initramfs, boot, run bun test inside, count the results.
// scripts/vm.ts is the command line around it; a matrix runner can call runInVm per kernel.
import { existsSync, readdirSync, realpathSync, rmSync, statSync } from "node:fs";
import { release as hostRelease } from "node:os";
import { join } from "node:path";
import { defaultCacheDir, ensureDir } from "./cache.ts";
import { GUEST_LIBURING } from "./init.ts";
import { baseArchive, combinedInitrd, projectArchive } from "./initramfs.ts";
import { fetchKernel, type KernelFiles } from "./kernel.ts";
import type { VmOptions } from "./options.ts";
import { DeadlineError, forEachLine } from "./proc.ts";
import { boot, kvmUsable, type Accel, type BootResult } from "./qemu.ts";
import { SummaryParser, type Counts } from "./summary.ts";
import { ensureTools } from "./tools.ts";

export type { VmOptions } from "./options.ts";

export interface RunResult extends Counts {
  /** Kernel release the tests ran on ("" if the guest never booted). */
  kernel: string;
  accel: Accel | "host";
  exitCode: number;
  seconds: number;
  bootSeconds?: number;
  testSeconds?: number;
  /** Why the run failed before or outside bun test, when it did. */
  error?: string;
}

export interface RunHooks {
  /** Test output and the kernel line (default: stdout). */
  write?: (text: string) => void;
  /** Progress and diagnostics, one line each (default: stderr, prefixed "vm: "). */
  log?: (line: string) => void;
}

export const EXIT_TIMEOUT = 124;
export const EXIT_INFRA = 125;
const HOST_LIBURING = "/usr/lib/x86_64-linux-gnu/liburing.so.2";

const defaultWrite = (text: string) => void process.stdout.write(text);
const defaultLog = (line: string) => void process.stderr.write(`vm: ${line}\n`);

/** Runs opts.files with bun test on the chosen kernel; never throws, failures are in the result. */
export async function runInVm(opts: VmOptions, hooks: RunHooks = {}): Promise<RunResult> {
  const write = hooks.write ?? defaultWrite;
  const log = hooks.log ?? defaultLog;
  const started = performance.now();
  const deadline = Date.now() + opts.timeoutSec * 1000;
  const finish = (partial: Omit<RunResult, "seconds">): RunResult => ({
    ...partial,
    seconds: Math.round((performance.now() - started) / 100) / 10,
  });
  try {
    if (opts.kernel === "host") return finish(await runOnHost(opts, deadline, write, log));
    return finish(await runGuest(opts, deadline, write, log));
  } catch (err) {
    const timedOut = err instanceof DeadlineError || Date.now() >= deadline;
    const message = timedOut ? `timed out after ${opts.timeoutSec} s: ${errorText(err)}` : errorText(err);
    log(message);
    const accel = opts.kernel === "host" ? "host" : "tcg";
    return finish({
      kernel: "",
      accel,
      passed: 0,
      failed: 0,
      skipped: 0,
      exitCode: timedOut ? EXIT_TIMEOUT : EXIT_INFRA,
      error: message,
    });
  }
}

async function runGuest(opts: VmOptions, deadline: number, write: (t: string) => void, log: (l: string) => void) {
  const cacheDir = opts.cacheDir ?? defaultCacheDir();
  const tools = await ensureTools(log, deadline);
  const kernel = await fetchKernel(opts.kernel as Exclude<VmOptions["kernel"], "host">, {
    cacheDir,
    offline: opts.offline,
    deadline,
    log,
  });
  const bun = hostBun(opts.projectDir);
  const base = await baseArchive(cacheDir, { bun, busybox: tools.busybox, kernel, modules: opts.modules }, log);
  const initrdPath = runInitrdPath(cacheDir);
  try {
    const project = projectArchive({
      projectDir: opts.projectDir,
      liburing: hostLiburing(),
      env: guestEnv(opts.env),
      files: opts.files.map((f) => `./${f}`),
    });
    const initrd = await combinedInitrd(base, project, initrdPath);
    const kvm = await kvmUsable(tools.qemu);
    if (!kvm.ok) log(`KVM not usable (${kvm.why}); using TCG`);
    const bootWith = (accel: Accel) =>
      boot({
        qemu: tools.qemu,
        accel,
        vmlinuz: kernel.vmlinuz,
        initrd,
        memMb: opts.memMb,
        smp: 2,
        deadline,
        write,
        log,
      });
    let accel: Accel = kvm.ok ? "kvm" : "tcg";
    let result = await bootWith(accel);
    if (accel === "kvm" && !result.kernel && !result.timedOut) {
      log(`QEMU with KVM stopped before the guest booted (${lastLine(result.qemuStderr)}); retrying with TCG`);
      accel = "tcg";
      result = await bootWith(accel);
    }
    if (!result.kernel && !result.timedOut) {
      // Under TCG a Debian kernel now and then panics in early boot (seen on 7.2:
      // __hrtimer_start_range_ns); a guest that never booted says nothing about the tests.
      log(`the guest did not boot (QEMU exit ${result.qemuExit}); booting once more`);
      result = await bootWith(accel);
    }
    return guestOutcome(result, accel, kernel, opts.timeoutSec, log);
  } finally {
    rmSync(initrdPath, { force: true });
  }
}

/** A run is bounded by its timeout, so a combined initrd this old belongs to no live run. */
const STALE_INITRD_MS = 24 * 3600 * 1000;

/**
 * This run's combined initrd (100+ MB) in the cache, under a name no concurrent run shares. A
 * run killed by a signal cannot clean up after itself, so each run removes day-old leftovers
 * (by age, not by pid: runs in other PID namespaces share this cache).
 */
function runInitrdPath(cacheDir: string): string {
  const dir = ensureDir(join(cacheDir, "run"));
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (Date.now() - statSync(path).mtimeMs > STALE_INITRD_MS) rmSync(path, { force: true });
  }
  return join(dir, `initrd-${process.pid}-${crypto.randomUUID().slice(0, 8)}.cpio`);
}

/** Turns what the console showed into a result, explaining a guest that did not finish. */
function guestOutcome(
  result: BootResult,
  accel: Accel,
  kernel: KernelFiles,
  timeoutSec: number,
  log: (l: string) => void,
) {
  const base = {
    kernel: result.kernel ?? "",
    accel,
    ...result.counts,
    bootSeconds: result.bootSeconds,
    testSeconds: result.testSeconds,
  };
  if (result.exitCode !== undefined) return { ...base, exitCode: result.exitCode };
  let error: string;
  if (result.timedOut) {
    error = `timed out after ${timeoutSec} s ${result.kernel ? "while bun test ran" : "before the guest booted"}; QEMU killed`;
  } else if (!result.kernel) {
    error = `guest kernel ${kernel.release} did not boot (QEMU exit ${result.qemuExit})`;
    for (const line of result.earlyConsole.slice(-40)) log(`console: ${line}`);
  } else {
    error = `guest stopped before bun test finished (QEMU exit ${result.qemuExit})`;
  }
  if (result.qemuStderr) log(`qemu: ${lastLine(result.qemuStderr)}`);
  log(error);
  return { ...base, exitCode: result.timedOut ? EXIT_TIMEOUT : EXIT_INFRA, error };
}

/** No VM: the same files with the host's bun, output streamed and counted the same way. */
async function runOnHost(opts: VmOptions, deadline: number, write: (t: string) => void, log: (l: string) => void) {
  const kernel = hostRelease();
  write(`vm: kernel ${kernel} (host)\n`);
  const started = performance.now();
  const child = Bun.spawn([hostBun(opts.projectDir), "test", ...opts.files.map((f) => `./${f}`)], {
    cwd: opts.projectDir,
    env: { ...process.env, ...colourEnv(), ...opts.env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  let timedOut = false;
  const timer = setTimeout(
    () => {
      timedOut = true;
      child.kill("SIGKILL");
    },
    Math.max(0, deadline - Date.now()),
  );
  const summary = new SummaryParser();
  const forward = (line: string) => {
    summary.line(line);
    write(line + "\n");
  };
  await Promise.all([forEachLine(child.stdout, forward), forEachLine(child.stderr, forward)]);
  const code = await child.exited;
  clearTimeout(timer);
  const testSeconds = (performance.now() - started) / 1000;
  if (timedOut) {
    const error = `timed out after ${opts.timeoutSec} s; bun test killed`;
    log(error);
    return { kernel, accel: "host" as const, ...summary.counts, exitCode: EXIT_TIMEOUT, testSeconds, error };
  }
  return { kernel, accel: "host" as const, ...summary.counts, exitCode: code, testSeconds };
}

/**
 * The guest's environment: fixed paths, the host's BUN_URING_* (minus the runner's own
 * BUN_URING_VM_* settings and the host's liburing path, which means nothing inside), then --env.
 */
export function guestEnv(extra: Record<string, string>, hostEnv: Record<string, string | undefined> = process.env) {
  const passed = Object.fromEntries(
    Object.entries(hostEnv).filter(
      (e): e is [string, string] =>
        e[0].startsWith("BUN_URING_") &&
        !e[0].startsWith("BUN_URING_VM_") &&
        e[0] !== "BUN_URING_LIBURING" &&
        e[1] !== undefined,
    ),
  );
  return {
    HOME: "/root",
    TMPDIR: "/tmp",
    PATH: "/usr/local/bin:/usr/bin:/usr/sbin",
    ...colourEnv(),
    ...passed,
    BUN_URING_IN_VM: "1",
    BUN_URING_LIBURING: GUEST_LIBURING,
    ...extra,
  };
}

/** The guest console is a tty, so bun would colour its output; follow our own stdout instead. */
function colourEnv(): Record<string, string> {
  return process.stdout.isTTY ? { FORCE_COLOR: "1" } : { NO_COLOR: "1" };
}

/** node_modules/.bin/bun resolved to the real ELF, else the bun running this script. */
function hostBun(projectDir: string): string {
  const local = join(projectDir, "node_modules", ".bin", "bun");
  return realpathSync(existsSync(local) ? local : process.execPath);
}

function hostLiburing(): string {
  const path = process.env.BUN_URING_LIBURING || HOST_LIBURING;
  if (!existsSync(path))
    throw new Error(`liburing not found at ${path} (install liburing2, or set BUN_URING_LIBURING)`);
  return path;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function lastLine(text: string): string {
  return text.trim().split("\n").pop() ?? "";
}
