// Sockets and zero-copy sends over a veth pair between two network namespaces this file creates
// (unique names, deleted in afterAll). Each side runs as a child process inside its namespace
// (`ip netns exec NS bun test/fixtures/zc-peer.ts ...`). The pair carries documentation
// addresses only (192.0.2.0/24, 2001:db8::/64) and exists only inside the namespaces.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import { describeIf } from "./helpers.ts";

const ID = `${process.pid % 100000}`;
const NS_A = `bunuring-a-${ID}`,
  NS_B = `bunuring-b-${ID}`;
const VETH_A = `bua${ID}`,
  VETH_B = `bub${ID}`;
const A4 = "192.0.2.1",
  B4 = "192.0.2.2",
  A6 = "2001:db8::1",
  B6 = "2001:db8::2";
const FIXTURE = join(import.meta.dir, "fixtures", "zc-peer.ts");
const BUN = process.execPath;

function sh(args: string[]): { ok: boolean; out: string } {
  const p = Bun.spawnSync(args, { stdout: "pipe", stderr: "pipe" });
  return { ok: p.exitCode === 0, out: p.stdout.toString() + p.stderr.toString() };
}

/** Why the namespaces cannot be made here, or null. Probed once with a throwaway namespace. */
function netnsReason(): string | null {
  if (process.getuid?.() !== 0) return "network namespaces need root (CAP_SYS_ADMIN and CAP_NET_ADMIN)";
  if (!sh(["ip", "-V"]).ok) return "the ip command (iproute2) is not installed";
  const probe = `bunuring-probe-${ID}`;
  const r = sh(["ip", "netns", "add", probe]);
  if (!r.ok) return `ip netns add failed: ${r.out.trim()}`;
  sh(["ip", "netns", "del", probe]);
  return null;
}

const reason = netnsReason();

function setUp(): void {
  const steps: string[][] = [
    ["ip", "netns", "add", NS_A],
    ["ip", "netns", "add", NS_B],
    ["ip", "link", "add", VETH_A, "netns", NS_A, "type", "veth", "peer", "name", VETH_B, "netns", NS_B],
    ["ip", "-n", NS_A, "addr", "add", `${A4}/24`, "dev", VETH_A],
    ["ip", "-n", NS_B, "addr", "add", `${B4}/24`, "dev", VETH_B],
    ["ip", "-n", NS_A, "addr", "add", `${A6}/64`, "dev", VETH_A, "nodad"],
    ["ip", "-n", NS_B, "addr", "add", `${B6}/64`, "dev", VETH_B, "nodad"],
    ["ip", "-n", NS_A, "link", "set", VETH_A, "up"],
    ["ip", "-n", NS_B, "link", "set", VETH_B, "up"],
    ["ip", "-n", NS_A, "link", "set", "lo", "up"],
    ["ip", "-n", NS_B, "link", "set", "lo", "up"],
  ];
  for (const s of steps) {
    const r = sh(s);
    if (!r.ok) throw new Error(`${s.join(" ")}: ${r.out.trim()}`);
  }
  // Permanent neighbour entries: the first datagrams to a neighbour not yet resolved wait in a
  // small queue (IPv6 neighbour discovery) and a large fragmented one overflows it and is dropped,
  // which a test that counts every datagram would take for a lost send.
  const mac = (ns: string, dev: string): string => {
    const r = sh(["ip", "-n", ns, "-j", "link", "show", dev]);
    if (!r.ok) throw new Error(`ip -j link show ${dev}: ${r.out.trim()}`);
    return (JSON.parse(r.out) as Array<{ address: string }>)[0]!.address;
  };
  const macA = mac(NS_A, VETH_A),
    macB = mac(NS_B, VETH_B);
  for (const s of [
    ["ip", "-n", NS_A, "neigh", "replace", B4, "lladdr", macB, "dev", VETH_A, "nud", "permanent"],
    ["ip", "-n", NS_A, "neigh", "replace", B6, "lladdr", macB, "dev", VETH_A, "nud", "permanent"],
    ["ip", "-n", NS_B, "neigh", "replace", A4, "lladdr", macA, "dev", VETH_B, "nud", "permanent"],
    ["ip", "-n", NS_B, "neigh", "replace", A6, "lladdr", macA, "dev", VETH_B, "nud", "permanent"],
  ]) {
    const r = sh(s);
    if (!r.ok) throw new Error(`${s.join(" ")}: ${r.out.trim()}`);
  }
}

function tearDown(): void {
  // Deleting a namespace deletes the veth end inside it, and with it the peer.
  sh(["ip", "netns", "del", NS_A]);
  sh(["ip", "netns", "del", NS_B]);
}

interface PeerResult {
  [k: string]: unknown;
}

async function exchange(proto: "tcp" | "udp", dst: string, mode: string): Promise<{ rx: PeerResult; tx: PeerResult }> {
  const rx = Bun.spawn(["ip", "netns", "exec", NS_B, BUN, FIXTURE, "recv", proto, dst, "0"], {
    stdout: "pipe",
    stderr: "pipe",
  });
  try {
    const reader = rx.stdout.getReader();
    const dec = new TextDecoder();
    let text = "";
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`receiver exited: ${await new Response(rx.stderr).text()}`);
      text += dec.decode(value);
    }
    const port = /listening (\d+)/.exec(text)?.[1];
    if (!port) throw new Error(`unexpected receiver output ${text}`);
    const tx = Bun.spawnSync(["ip", "netns", "exec", NS_A, BUN, FIXTURE, "send", proto, dst, port, mode, "3"], {
      stdout: "pipe",
      stderr: "pipe",
    });
    if (tx.exitCode !== 0) throw new Error(`sender failed: ${tx.stderr.toString()}`);
    for (;;) {
      const { value, done } = await reader.read();
      if (value) text += dec.decode(value);
      if (done) break;
    }
    await rx.exited;
    const rxJson = JSON.parse(/\{.*\}/.exec(text.split("\n").slice(1).join("\n"))![0]) as PeerResult;
    const txJson = JSON.parse(/\{.*\}/.exec(tx.stdout.toString())![0]) as PeerResult;
    return { rx: rxJson, tx: txJson };
  } finally {
    rx.kill();
  }
}

describeIf(reason, "over a veth pair between two network namespaces", () => {
  beforeAll(() => {
    tearDown();
    try {
      setUp();
    } catch (e) {
      tearDown();
      throw e;
    }
  });
  afterAll(() => tearDown());

  for (const [family, dst] of [
    ["IPv4", B4],
    ["IPv6", B6],
  ] as const) {
    for (const mode of ["zc", "copy", "mixed", "adaptive"]) {
      test(`TCP ${family} ${mode}: byte-exact, every send released once`, async () => {
        const { rx, tx } = await exchange("tcp", dst, mode);
        expect(tx.errors).toBe(0);
        expect(tx.anomalies).toBe(0);
        expect(tx.onceEach).toBe(true);
        expect(tx.released).toBe(tx.sends);
        expect(rx.bytes).toBe(tx.bytes);
        expect(rx.sha256).toBe(tx.sha256);
        if (mode === "zc") expect((tx.copied as number) + (tx.zerocopy as number)).toBe(tx.sends as number);
      }, 60_000);
    }
    test(`UDP ${family} zc with a destination: every datagram arrives intact`, async () => {
      const { rx, tx } = await exchange("udp", dst, "zc");
      expect(tx.errors).toBe(0);
      expect(tx.onceEach).toBe(true);
      expect(rx.hashes).toEqual(tx.hashes);
    }, 60_000);
  }
});
