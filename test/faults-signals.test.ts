// SIGINT in the middle of the tx/rx experiments: the process ends promptly (a synchronous ring wait
// must not hold Ctrl-C off), and with it every ring, registered buffer and socket it had (the
// kernel tears an io_uring instance down with its last fd). Neither script changes ethtool
// settings (scripts/zcrx-setup.ts does, and restores them itself), so there is nothing else to
// restore.
import { expect } from "bun:test";
import { existsSync, readFileSync, readdirSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { spawn } from "node:child_process";
import { testIf } from "./helpers.ts";

const root = join(import.meta.dir, "..");

/** A process started from a non-interactive shell's background job inherits SIGINT as ignored
 * (POSIX), and exec keeps it ignored: then no SIGINT test can mean anything. */
function sigintIgnored(): boolean {
  const m = /^SigIgn:\s*([0-9a-f]+)$/m.exec(readFileSync("/proc/self/status", "utf8"));
  return m ? (BigInt(`0x${m[1]}`) & 2n) !== 0n : false;
}
const skip = sigintIgnored()
  ? "SIGINT is ignored in this process (started as a background job of a non-interactive shell), so children cannot receive it"
  : null;

function ringFds(pid: number): number {
  let n = 0;
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) === "anon_inode:[io_uring]") n++;
      } catch {
        // The fd closed while we looked.
      }
    }
  } catch {
    return -1;
  }
  return n;
}

/** Whether any process of process group `pgid` is still alive. */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Start the script in its own process group (as a shell does for a foreground job), then send
 * SIGINT to the whole group, as Ctrl-C does: helper children (tx.ts starts a receiver) get it
 * too. */
async function interrupt(
  args: string[],
  readyText: RegExp | null,
  waitForRing: boolean,
): Promise<{
  signal: string | null;
  code: number | null;
  ringsBefore: number;
  wasReady: boolean;
  out: string;
  groupLeft: boolean;
}> {
  const p = spawn(process.execPath, args, { cwd: root, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  p.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  p.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  let exit: { code: number | null; signal: string | null } | null = null;
  const exited = new Promise<void>((resolve) =>
    p.on("exit", (code, signal) => {
      exit = { code, signal };
      resolve();
    }),
  );
  const pid = p.pid!;
  // Ready: the script printed its ready line, or (scripts that print only at the end) it has a
  // ring open. A slow machine (TCG guests) gets the time it needs rather than a fixed head start.
  const ready = () => (readyText ? readyText.test(out) : !waitForRing || ringFds(pid) > 0);
  const deadline = performance.now() + 20_000;
  while (!ready() && performance.now() < deadline && exit === null) await Bun.sleep(50);
  // Let it get going (sends in flight, rings registered), then interrupt.
  await Bun.sleep(300);
  const ringsBefore = ringFds(pid);
  const wasReady = ready();
  if (exit === null) process.kill(-pid, "SIGINT");
  const killer = setTimeout(() => groupAlive(pid) && process.kill(-pid, "SIGKILL"), 10_000);
  await exited;
  // Children of the group get a moment to go too.
  for (let i = 0; i < 50 && groupAlive(pid); i++) await Bun.sleep(100);
  const groupLeft = groupAlive(pid);
  if (groupLeft) process.kill(-pid, "SIGKILL");
  clearTimeout(killer);
  const e = exit as { code: number | null; signal: string | null } | null;
  return { signal: e?.signal ?? null, code: e?.code ?? null, ringsBefore, wasReady, out, groupLeft };
}

const cases: Array<{ name: string; args: string[]; ready: RegExp | null; usesRing: boolean }> = [
  {
    name: "tx.ts sending SEND_ZC over loopback",
    args: ["scripts/tx.ts", "tcp", "-m", "zc", "-t", "30"],
    ready: null,
    usesRing: true,
  },
  {
    name: "tx.ts from registered buffers (zc-fixed)",
    args: ["scripts/tx.ts", "tcp", "-m", "zc-fixed", "-t", "30"],
    ready: null,
    usesRing: true,
  },
  {
    name: "tx.ts receiver waiting for a peer",
    args: ["scripts/tx.ts", "-R", "-p", "0"],
    ready: /listening/,
    usesRing: true,
  },
  {
    name: "rx.ts (plain recv baseline) waiting for a peer",
    args: ["scripts/rx.ts", "--mode", "recv", "--port", "0"],
    ready: /listening/,
    usesRing: false,
  },
];

for (const c of cases) {
  const missing = existsSync(join(root, c.args[0]!)) ? skip : `${c.args[0]} is not there`;
  testIf(
    missing,
    `SIGINT during ${c.name}: the process ends at once, its rings with it`,
    async () => {
      const r = await interrupt(c.args, c.ready, c.usesRing);
      // Ended by the signal itself (or a handler's exit 130), not by the 10 s SIGKILL fallback; a
      // script that had already stopped on its own shows its exit code and last output here.
      const ended =
        r.signal === "SIGINT" || r.code === 130
          ? "by SIGINT"
          : `on its own: signal ${r.signal}, exit ${r.code}, output ${JSON.stringify((r.out.split("\n").find((l) => /Error|error:/.test(l)) ?? r.out.trim().split("\n").slice(-3).join(" | ")).trim())}`;
      expect(ended).toBe("by SIGINT");
      // The signal came mid-run: the script had printed its ready line (or opened its ring).
      expect(r.wasReady).toBe(true);
      // Nothing of the job is left running (a receiver child holding a ring and a socket).
      expect(r.groupLeft).toBe(false);
      // The rings existed when the signal came (the process was mid-run, not done already).
      if (c.usesRing) expect(r.ringsBefore).toBeGreaterThan(0);
    },
    40_000,
  );
}
