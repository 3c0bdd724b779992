// tx.ts and rx.ts against liburing's own examples/send-zerocopy (built from Debian's liburing
// source, scripts/lib/liburing-source.ts), in both directions, TCP and UDP, IPv4 and IPv6, on
// loopback only. Byte counts are asserted exactly on the side that can count: send-zerocopy's
// sender prints its packets, its receiver prints nothing usable (its rx threads never set a
// duration), so there our sender's own totals and the receiver's exit status are the proof.
import { describe, expect } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { testIf } from "./helpers.ts";
import { sendZerocopy } from "../scripts/lib/liburing-source.ts";
import { LIBURING_PAYLOAD } from "../scripts/lib/wire.ts";
import { lastJsonLine, spawnListening } from "../scripts/lib/child.ts";

const ROOT = join(import.meta.dir, "..");
const built = await sendZerocopy(60_000).catch((e: Error) => ({
  skip: `liburing's send-zerocopy could not be prepared: ${e.message}`,
}));
const SKIP = "skip" in built ? built.skip : null;
const SZ = "path" in built ? built.path : "";
if ("path" in built) console.log(`interop: liburing ${built.version}'s examples/send-zerocopy, ${built.path}`);
/** Bound for one pairing; each takes 1-3 s here. */
const TIMEOUT_MS = 30_000;

type Family = "4" | "6";
const host = (f: Family) => (f === "4" ? "127.0.0.1" : "::1");

interface Proc {
  proc: Bun.Subprocess<"ignore", "pipe", "pipe">;
  out: Promise<string>;
  err: Promise<string>;
}

function spawn(argv: string[]): Proc {
  const proc = Bun.spawn(argv, { cwd: ROOT, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const killer = setTimeout(() => proc.kill("SIGKILL"), TIMEOUT_MS);
  proc.exited.then(() => clearTimeout(killer));
  return { proc, out: new Response(proc.stdout).text(), err: new Response(proc.stderr).text() };
}

const bun = (script: string, args: string[]) => spawn([process.execPath, join(ROOT, "scripts", script), ...args]);

/** One of our receivers; `result` is its exit code and output once it exits. */
async function ourReceiver(script: string, args: string[], portOn: "stdout" | "stderr") {
  const child = await spawnListening([process.execPath, join(ROOT, "scripts", script), ...args], { portOn, cwd: ROOT });
  const killer = setTimeout(() => child.kill(), TIMEOUT_MS);
  child.result.then(() => clearTimeout(killer));
  return child;
}

/** send-zerocopy's closing line: "packets=N (MB=M), rps=... (MB/s=...)". */
function liburingPackets(out: string): number {
  const m = /packets=(\d+) \(MB=(\d+)\)/.exec(out);
  if (!m) throw new Error(`no packets= line in send-zerocopy's output: ${out}`);
  return Number(m[1]);
}

/** A row as the tools print it with --json (scripts/lib/report.ts, plus the receivers' extras). */
interface JsonRow {
  mode: string;
  bytes: number;
  ops: number;
  errors: number;
  note: string;
  drops: number | null;
  mismatches: number | null;
  error?: string | null;
  verified?: boolean | null;
}

/** Every JSON object a tool printed, one per line. */
function jsonRows(out: string): JsonRow[] {
  return out
    .trim()
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as JsonRow);
}

/** The last JSON object a tool printed. */
function lastJson(out: string): JsonRow {
  const row = lastJsonLine<JsonRow>(out);
  if (!row) throw new Error(`no JSON line in: ${out}`);
  return row;
}

/** A port nothing uses right now, for send-zerocopy -R (it cannot pick one and say which). */
async function freePort(proto: "tcp" | "udp", f: Family): Promise<number> {
  if (proto === "tcp") {
    const l = Bun.listen({ hostname: host(f), port: 0, socket: { data() {} } });
    const p = l.port;
    l.stop(true);
    return p;
  }
  const u = await Bun.udpSocket({ hostname: host(f), port: 0 });
  const p = u.port;
  u.close();
  return p;
}

/** Waits until /proc/net shows a socket bound to `port` (TCP: listening), without connecting:
 * send-zerocopy -R accepts exactly one connection, and a probe would take it. */
async function waitBound(proto: "tcp" | "udp", f: Family, port: number): Promise<void> {
  const table = `/proc/net/${proto}${f === "6" ? "6" : ""}`;
  const hex = port.toString(16).toUpperCase().padStart(4, "0");
  for (let i = 0; i < 500; i++) {
    const rows = readFileSync(table, "utf8")
      .split("\n")
      .slice(1)
      .map((l) => l.trim().split(/\s+/));
    if (rows.some((r) => r[1]?.endsWith(`:${hex}`) && (proto === "udp" || r[3] === "0A"))) return;
    await Bun.sleep(20);
  }
  throw new Error(`send-zerocopy -R did not bind ${proto} port ${port}`);
}

describe("liburing send-zerocopy sends, our receivers count and check every byte", () => {
  /** One of our receivers (port printed on `portOn`), then send-zerocopy for 0.2 s (-t 0) at it;
   * both must exit 0. Returns send-zerocopy's packet count and the receiver's row. */
  async function pair(f: Family, proto: "tcp" | "udp", script: string, args: string[], portOn: "stdout" | "stderr") {
    const rx = await ourReceiver(script, [proto, `-${f}`, "-p", "0", "--json", "-v", ...args], portOn);
    // TCP with -v keeps the pattern continuous across sends, which needs one send at a time.
    const tx = spawn([
      SZ,
      `-${f}`,
      "-D",
      host(f),
      "-p",
      String(rx.port),
      "-t",
      "0",
      ...(proto === "tcp" ? ["-v", "-n", "1"] : []),
      proto,
    ]);
    const [txCode, txOut] = await Promise.all([tx.proc.exited, tx.out]);
    const r = await rx.result;
    expect(txCode).toBe(0);
    expect(r.code).toBe(0);
    const packets = liburingPackets(txOut);
    expect(packets).toBeGreaterThan(0);
    return { packets, row: lastJson(r.out) };
  }

  /** TCP: every byte of every send arrived, in the pattern. */
  function expectStream({ packets, row }: { packets: number; row: JsonRow }): void {
    expect(row.error ?? null).toBe(null);
    expect(row.bytes).toBe(packets * LIBURING_PAYLOAD);
  }

  /** UDP: every datagram sent was received or dropped by the kernel, and those received were whole. */
  function expectDatagrams({ packets, row }: { packets: number; row: JsonRow }): void {
    expect(row.error).toBe(null);
    expect(row.ops).toBeGreaterThan(0);
    expect(row.ops + row.drops!).toBe(packets);
    expect(row.bytes).toBe(row.ops * LIBURING_PAYLOAD);
    expect(row.mismatches).toBe(0);
  }

  for (const f of ["4", "6"] as const) {
    testIf(
      SKIP,
      `send-zerocopy tcp -${f} -v -> tx -R -v: bytes = packets x ${LIBURING_PAYLOAD}, the stream is its pattern`,
      async () => {
        const r = await pair(f, "tcp", "tx.ts", ["-R", "--once"], "stdout");
        expectStream(r);
        expect(r.row.mismatches).toBe(0);
        expect(r.row.note).toBe("pattern verified");
      },
      TIMEOUT_MS,
    );

    testIf(
      SKIP,
      `send-zerocopy udp -${f} -> tx -R -s ${LIBURING_PAYLOAD} -v: received + dropped = packets, each datagram checked`,
      async () => {
        expectDatagrams(await pair(f, "udp", "tx.ts", ["-R", "--once", "-s", String(LIBURING_PAYLOAD)], "stdout"));
      },
      TIMEOUT_MS,
    );

    testIf(
      SKIP,
      `send-zerocopy tcp -${f} -v -> rx --mode recv -v: bytes = packets x ${LIBURING_PAYLOAD}, verified`,
      async () => {
        const r = await pair(f, "tcp", "rx.ts", ["--mode", "recv"], "stderr");
        expectStream(r);
        expect(r.row.verified).toBe(true);
      },
      TIMEOUT_MS,
    );

    testIf(
      SKIP,
      `send-zerocopy udp -${f} -> rx udp -s ${LIBURING_PAYLOAD} -v: received + dropped = packets`,
      async () => {
        expectDatagrams(await pair(f, "udp", "rx.ts", ["-s", String(LIBURING_PAYLOAD)], "stderr"));
      },
      TIMEOUT_MS,
    );
  }
});

describe("tx sends, liburing's send-zerocopy -R receives", () => {
  /** send-zerocopy -R with a long window (-t 10): it ends at the TCP stream's end, and for UDP
   * it only checks the clock after a datagram, so it is stopped here once tx is done. */
  async function liburingReceiver(proto: "tcp" | "udp", f: Family, extra: string[] = []) {
    const port = await freePort(proto, f);
    const rx = spawn([SZ, `-${f}`, "-R", "-D", host(f), "-p", String(port), "-t", "10", ...extra, proto]);
    await waitBound(proto, f, port);
    return { port, rx };
  }

  for (const f of ["4", "6"] as const) {
    testIf(
      SKIP,
      `tx tcp -${f} (zc, nonzc) -> send-zerocopy -R: every send whole, the receiver reads to the end`,
      async () => {
        for (const mode of ["zc", "nonzc"]) {
          // send-zerocopy -R takes one connection, so one mode per receiver.
          const { port, rx } = await liburingReceiver("tcp", f);
          const tx = bun("tx.ts", [
            "tcp",
            `-${f}`,
            "-D",
            host(f),
            "-p",
            String(port),
            "-t",
            "0.3",
            "-m",
            mode,
            "--json",
          ]);
          const [txCode, txOut, txErr] = await Promise.all([tx.proc.exited, tx.out, tx.err]);
          expect(txErr).toBe("");
          expect(txCode).toBe(0);
          expect(await rx.proc.exited).toBe(0);
          expect(await rx.err).toBe("");
          const row = lastJson(txOut);
          expect(row.errors).toBe(0);
          expect(row.ops).toBeGreaterThan(0);
          expect(row.bytes).toBe(row.ops * LIBURING_PAYLOAD);
        }
      },
      TIMEOUT_MS,
    );

    testIf(
      SKIP,
      `tx udp -${f} (zc, nonzc) -> send-zerocopy -R: every datagram ${LIBURING_PAYLOAD} bytes of its pattern, none refused`,
      async () => {
        const { port, rx } = await liburingReceiver("udp", f);
        const tx = bun("tx.ts", [
          "udp",
          `-${f}`,
          "-D",
          host(f),
          "-p",
          String(port),
          "-t",
          "0.3",
          "-m",
          "zc,nonzc",
          "--json",
        ]);
        const [txCode, txOut, txErr] = await Promise.all([tx.proc.exited, tx.out, tx.err]);
        // Still running: it exits 1 at the first datagram of the wrong size or content.
        expect(rx.proc.exitCode).toBe(null);
        rx.proc.kill();
        await rx.proc.exited;
        expect(await rx.err).toBe("");
        expect(txErr).toBe("");
        expect(txCode).toBe(0);
        const rows = jsonRows(txOut);
        expect(rows.map((r) => r.mode)).toEqual(["zc", "nonzc"]);
        for (const r of rows) {
          expect(r.errors).toBe(0);
          expect(r.ops).toBeGreaterThan(0);
          expect(r.bytes).toBe(r.ops * LIBURING_PAYLOAD);
        }
      },
      TIMEOUT_MS,
    );
  }

  testIf(
    SKIP,
    "send-zerocopy -R refuses datagrams of another size: its check is live",
    async () => {
      const { port, rx } = await liburingReceiver("udp", "4");
      const tx = bun("tx.ts", [
        "udp",
        "-D",
        "127.0.0.1",
        "-p",
        String(port),
        "-t",
        "5",
        "-m",
        "nonzc",
        "-s",
        "1000",
        "--json",
      ]);
      expect(await rx.proc.exited).toBe(1);
      expect(await rx.err).toContain(`recv: ret=1000 != ${LIBURING_PAYLOAD}`);
      // The receiver's socket is gone: tx's connected socket reports it, in one line.
      expect(await tx.proc.exited).toBe(1);
      const err = (await tx.err).trim();
      expect(err.split("\n")).toHaveLength(1);
      expect(err).toMatch(/^tx: no receiver at udp 127\.0\.0\.1:\d+: .*ECONNREFUSED/);
    },
    TIMEOUT_MS,
  );
});

describe("tx -m all against one of our receivers", () => {
  testIf(
    SKIP,
    "tx -R takes one connection per mode and reports each with the sender's byte count",
    async () => {
      const rx = await ourReceiver("tx.ts", ["-R", "tcp", "-p", "0", "--conns", "5", "--json", "-v"], "stdout");
      const tx = bun("tx.ts", [
        "tcp",
        "-D",
        "127.0.0.1",
        "-p",
        String(rx.port),
        "-t",
        "0.2",
        "-m",
        "all",
        "-v",
        "--json",
      ]);
      const [txCode, txOut, txErr] = await Promise.all([tx.proc.exited, tx.out, tx.err]);
      expect(txErr).toBe("");
      expect(txCode).toBe(0);
      const sent = jsonRows(txOut);
      expect(sent.map((r) => r.mode)).toEqual(["nonzc", "zc", "zc-fixed", "mixed", "adaptive"]);
      const r = await rx.result;
      expect(r.code).toBe(0);
      const received = jsonRows(r.out);
      expect(received.map((x) => x.bytes)).toEqual(sent.map((x) => x.bytes));
      for (const x of received) expect(x.mismatches).toBe(0);
    },
    TIMEOUT_MS,
  );

  testIf(
    SKIP,
    "tx udp with two modes: tx -R tells the bursts apart, and each burst's received + dropped = that mode's sends",
    async () => {
      const rx = await ourReceiver(
        "tx.ts",
        ["-R", "udp", "-p", "0", "--conns", "2", "--json", "-v", "-s", String(LIBURING_PAYLOAD)],
        "stdout",
      );
      const tx = bun("tx.ts", [
        "udp",
        "-D",
        "127.0.0.1",
        "-p",
        String(rx.port),
        "-t",
        "0.2",
        "-m",
        "zc,nonzc",
        "--json",
      ]);
      const [txCode, txOut, txErr] = await Promise.all([tx.proc.exited, tx.out, tx.err]);
      expect(txErr).toBe("");
      expect(txCode).toBe(0);
      const sent = jsonRows(txOut);
      const r = await rx.result;
      expect(r.code).toBe(0);
      const bursts = jsonRows(r.out);
      expect(bursts.map((b) => b.ops + b.drops!)).toEqual(sent.map((x) => x.ops));
      for (const b of bursts) expect(b.mismatches).toBe(0);
    },
    TIMEOUT_MS,
  );
});
