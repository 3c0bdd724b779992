// Booting the guest under QEMU and following its serial console.
import { accessSync, constants } from "node:fs";
import { MARK_BOOT, MARK_END } from "./init.ts";
import { forEachLine } from "./proc.ts";
import { SummaryParser, type Counts } from "./summary.ts";

export type Accel = "kvm" | "tcg";

/**
 * KVM only if /dev/kvm is there and QEMU can bring up this guest's machine and CPU with it: on
 * nested or restricted hosts the node exists but creating the VM or loading the vCPU's MSRs
 * fails (here: "failed to set MSR 0x10a"), which happens while the machine is built, before it
 * runs. So QEMU builds the real machine paused (-S) and quits from the monitor: ~30 ms.
 */
export async function kvmUsable(qemu: string): Promise<{ ok: boolean; why: string }> {
  try {
    accessSync("/dev/kvm", constants.R_OK | constants.W_OK);
  } catch {
    return { ok: false, why: "/dev/kvm missing or not accessible" };
  }
  const machine = ["-accel", "kvm", "-cpu", "host", "-M", "pc", "-smp", "2", "-nodefaults", "-display", "none", "-S"];
  const probe = Bun.spawn([qemu, ...machine, "-monitor", "stdio"], {
    stdin: new Blob(["quit\n"]),
    stdout: "ignore",
    stderr: "pipe",
  });
  const killer = setTimeout(() => probe.kill("SIGKILL"), 10_000);
  const [code, stderr] = await Promise.all([probe.exited, new Response(probe.stderr).text()]);
  clearTimeout(killer);
  const why = stderr.split("\n").find((l) => l.includes("error")) ?? lastLine(stderr);
  return code === 0 ? { ok: true, why: "" } : { ok: false, why: why || `qemu exited with ${code}` };
}

export interface BootOptions {
  qemu: string;
  accel: Accel;
  vmlinuz: string;
  initrd: string;
  memMb: number;
  smp: number;
  deadline: number;
  write: (text: string) => void;
  log: (line: string) => void;
}

export interface BootResult {
  /** Guest kernel release, when the guest got far enough to say it. */
  kernel?: string;
  /** bun test's exit code inside the guest; undefined when the guest never reported one. */
  exitCode?: number;
  counts: Counts;
  timedOut: boolean;
  qemuExit: number | null;
  bootSeconds?: number;
  testSeconds?: number;
  /** Console lines from before the boot marker, for diagnosing a guest that never got there. */
  earlyConsole: string[];
  qemuStderr: string;
}

export function qemuArgs(opts: BootOptions): string[] {
  return [
    opts.qemu,
    "-accel",
    opts.accel,
    "-cpu",
    opts.accel === "kvm" ? "host" : "max",
    "-M",
    "pc",
    "-m",
    String(opts.memMb),
    "-smp",
    String(opts.smp),
    "-nographic",
    "-no-reboot",
    // The guest talks only over loopback and veth; a NIC would just cost probe time at boot.
    "-nic",
    "none",
    "-kernel",
    opts.vmlinuz,
    "-initrd",
    opts.initrd,
    "-append",
    "console=ttyS0 quiet panic=-1 rdinit=/init",
  ];
}

const BOOT_LINE = new RegExp(`${MARK_BOOT} kernel=(\\S+)@@`);
const END_LINE = new RegExp(`${MARK_END} exit=(\\d+)@@`);
const EARLY_LINES_KEPT = 200;

/**
 * Follows the serial console: before the boot marker, lines are kernel noise kept only for a
 * failure report; between the markers, they are bun test's output, streamed and counted.
 */
class ConsoleFollower {
  phase: "boot" | "tests" | "done" = "boot";
  readonly summary = new SummaryParser();
  private bootedAt = 0;

  constructor(
    private readonly opts: BootOptions,
    private readonly result: BootResult,
    private readonly started: number,
    private readonly onEnd: () => void,
  ) {}

  line(line: string): void {
    if (this.phase === "boot") this.bootLine(line);
    else if (this.phase === "tests") this.testLine(line);
  }

  private bootLine(line: string): void {
    const boot = BOOT_LINE.exec(line);
    if (!boot) {
      if (line.startsWith("vm: ")) this.opts.write(line + "\n");
      this.result.earlyConsole.push(line);
      if (this.result.earlyConsole.length > EARLY_LINES_KEPT) this.result.earlyConsole.shift();
      return;
    }
    this.phase = "tests";
    this.bootedAt = performance.now();
    this.result.kernel = boot[1];
    this.result.bootSeconds = (this.bootedAt - this.started) / 1000;
    this.opts.write(`vm: kernel ${boot[1]} (${this.opts.accel})\n`);
    this.opts.log(`booted in ${this.result.bootSeconds.toFixed(1)} s`);
  }

  private testLine(line: string): void {
    const end = END_LINE.exec(line);
    if (!end) {
      this.summary.line(line);
      this.opts.write(line + "\n");
      return;
    }
    this.phase = "done";
    this.result.exitCode = Number(end[1]);
    this.result.testSeconds = (performance.now() - this.bootedAt) / 1000;
    this.opts.log(`bun test finished in ${this.result.testSeconds.toFixed(1)} s (exit ${this.result.exitCode})`);
    this.onEnd();
  }
}

/** Boots the guest and streams the test output between the markers until it powers off. */
export async function boot(opts: BootOptions): Promise<BootResult> {
  const started = performance.now();
  const child = Bun.spawn(qemuArgs(opts), { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const result: BootResult = {
    counts: { passed: 0, failed: 0, skipped: 0 },
    timedOut: false,
    qemuExit: null,
    earlyConsole: [],
    qemuStderr: "",
  };
  let poweroffTimer: Timer | undefined;
  // poweroff -f should end QEMU at once; if it lingers, the result is already known.
  const follower = new ConsoleFollower(opts, result, started, () => {
    poweroffTimer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  });
  const timer = setTimeout(
    () => {
      result.timedOut = true;
      child.kill("SIGKILL");
    },
    Math.max(0, opts.deadline - Date.now()),
  );
  const stderr = new Response(child.stderr).text();
  // The guest's tty turns each \n into \r\n; the \r goes.
  await forEachLine(child.stdout, (line) => follower.line(line.replace(/^\r+|\r+$/g, "")));
  result.qemuExit = await child.exited;
  clearTimeout(timer);
  if (poweroffTimer) clearTimeout(poweroffTimer);
  result.qemuStderr = (await stderr).trim();
  result.counts = follower.summary.counts;
  return result;
}

function lastLine(text: string): string {
  return text.trim().split("\n").pop() ?? "";
}
