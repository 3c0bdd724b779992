// Tier 3: a separate user_data for SEND_ZC notifications, on a kernel that has it (sqe->addr3:
// Linux 7.1, commit cb9487333652 "io_uring/zctx: separate notification user_data"; the VM's
// Debian 7.2 kernel). The kernel facts the library's probe rests on, then ZcSender with
// notifUserData on: every notification comes to its own op-table entry, and notifications made to
// arrive out of order (netem reordering on the guest's loopback) release exactly their own buffers.
// On a host kernel without it these tests skip, saying how to run them:
//   bun scripts/vm.ts --module sch_netem test/vm/zc-notif-user-data.test.ts
// (the same facts on a kernel without it are checked by test/zc.test.ts).
import { describe, expect } from "bun:test";
import { EBADF, EINVAL } from "../../src/abi/errno.ts";
import { IORING_CQE_F_MORE, IORING_OP_SENDMSG_ZC } from "../../src/abi/sqe.ts";
import {
  kernelAtLeast,
  kernelRelease,
  probeNotifUserData,
  probeNotifUserDataAnswer,
  probeSendZcFlags,
  sendZcOnBadFd,
} from "../../src/ring/kernel.ts";
import { Ring } from "../../src/ring/ring.ts";
import { ZcSender } from "../../src/zc/index.ts";
import { RecvLoop, closeQuietly, tcpAccept, tcpConnect, tcpListen, udpSocket } from "../../src/sync.ts";
import { testIf } from "../helpers.ts";

const inVm = process.env.BUN_URING_IN_VM === "1";
const have = probeNotifUserData();
// Inside the VM on 7.1+ the tests run whatever the probe says: a broken probe must fail here, not
// turn this file into skips. (The version only decides what the test expects; the library probes.)
const gate =
  have || (inVm && kernelAtLeast("7.1"))
    ? null
    : `SEND_ZC on this kernel (${kernelRelease()}) refuses a non-zero addr3 (probeNotifUserData() is false; Linux 7.1+ has it); run \`bun scripts/vm.ts --module sch_netem test/vm/zc-notif-user-data.test.ts\``;

function tc(args: string[]): { ok: boolean; out: string } {
  const p = Bun.spawnSync(["tc", ...args], { stdout: "pipe", stderr: "pipe" });
  return { ok: p.exitCode === 0, out: (p.stdout.toString() + p.stderr.toString()).trim() };
}

/** Why netem cannot reorder the guest's loopback here, or null. Only inside the VM: the host's
 * loopback is shared with everything else on the machine and is never touched. */
function netemReason(): string | null {
  if (gate !== null) return gate;
  if (!inVm) return "reordering loopback with netem is done only inside the scripts/vm.ts guest (BUN_URING_IN_VM=1)";
  const r = tc(["qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"]);
  if (!r.ok) return `tc qdisc add dev lo root netem failed (${r.out}); run scripts/vm.ts with --module sch_netem`;
  tc(["qdisc", "del", "dev", "lo", "root"]);
  return null;
}
const netemGate = netemReason();

describe("the kernel's answer the probe rests on", () => {
  testIf(gate, "a non-zero addr3 passes io_send_zc_prep (EBADF on fd -1) and the notification comes under it", () => {
    const a = probeNotifUserDataAnswer();
    console.log(`zc-notif: ${kernelRelease()} addr3 answer ${JSON.stringify(a)}`);
    expect(probeNotifUserData()).toBe(true);
    expect(a.res).toBe(-EBADF);
    // A notification follows if and only if the first CQE had F_MORE; where it came is the point.
    if (a.flags & IORING_CQE_F_MORE) expect(a.notification).toBe("addr3");
    else expect(a.notification).toBe("none");
  });

  testIf(gate, "addr3 = 0 keeps the send's own user_data for the notification", () => {
    const a = sendZcOnBadFd({ addr3: false });
    expect(a.res).toBe(-EBADF);
    if (a.flags & IORING_CQE_F_MORE) expect(a.notification).toBe("send");
  });

  testIf(gate, "no ioprio flag goes with it: SEND_ZC flag bits 6..15 are refused", () => {
    for (let bit = 6; bit <= 15; bit++) expect([bit, probeSendZcFlags(1 << bit)]).toEqual([bit, false]);
  });

  testIf(gate, "SENDMSG_ZC takes addr3 too (io_send_zc_prep serves both opcodes)", () => {
    // The msghdr at address 0 fails after the addr3 check (EFAULT or EBADF), never with EINVAL.
    const a = sendZcOnBadFd({ addr3: true, opcode: IORING_OP_SENDMSG_ZC });
    expect(a.res).toBeLessThan(0);
    expect(a.res).not.toBe(-EINVAL);
  });
});

function pattern(n: number, tag: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (tag * 31 + i) & 0xff;
  return b;
}

describe("ZcSender with notifUserData on", () => {
  testIf(
    gate,
    "TCP: every byte arrives, every send released once, and both op-table entries of each send are given back",
    () => {
      const ring = Ring.create({ entries: 256, memory: "mmap" });
      const l = tcpListen(ring, { host: "127.0.0.1", port: 0 });
      const client = tcpConnect(ring, { host: "127.0.0.1", port: l.address.port });
      const server = tcpAccept(ring, l.fd);
      try {
        const got: Uint8Array[] = [];
        const loop = new RecvLoop(ring, server, { bufferSize: 65536, onData: (b) => got.push(Uint8Array.from(b)) });
        // What is in flight besides the sender (the receive loop).
        const idle = ring.ops.inflight;
        const released = new Map<number, number>();
        const sender = new ZcSender(ring, client, {
          mode: "zc",
          notifUserData: true,
          onReleased: (t: number) => released.set(t, (released.get(t) ?? 0) + 1),
        });
        expect(sender.stats.notifUserData).toBe(true);
        expect(sender.stats.notifUserDataReason).toContain("addr3");
        const sent: Uint8Array[] = [];
        let total = 0;
        for (let i = 0; i < 200; i++) {
          const d = pattern(1000 + (i % 7) * 3000, i);
          sent.push(d);
          total += d.length;
          sender.send(d, i);
        }
        ring.runUntil(() => sender.inflight === 0 && got.reduce((n, b) => n + b.length, 0) === total, 20_000);
        // Every entry the sends took (the send's and its notification's) is back.
        expect(ring.ops.inflight).toBe(idle);
        loop.stop();
        expect(Buffer.concat(got).equals(Buffer.concat(sent))).toBe(true);
        expect([...released.values()].every((n) => n === 1) && released.size === 200).toBe(true);
        expect(sender.stats.anomalies).toBe(0);
        expect(sender.stats.notifCqes).toBeGreaterThan(0);
      } finally {
        ring.close();
        closeQuietly(server);
        closeQuietly(client);
        closeQuietly(l.fd);
      }
    },
  );

  for (const notifUserData of [true, false]) {
    testIf(
      netemGate,
      `UDP, notifications out of order (netem reorders loopback): each release is its own buffer's (notifUserData ${notifUserData})`,
      () => {
        // netem holds two of every three datagrams for 300 ms and sends the third at once, so the
        // third one's notification comes first. A held datagram's pages are still the kernel's: the
        // test scribbles over every buffer the moment it is released, so a release of the wrong
        // send would reach the receiver as 0xee bytes.
        const add = tc(["qdisc", "add", "dev", "lo", "root", "netem", "delay", "300ms", "reorder", "100%", "gap", "3"]);
        expect(add.out).toBe("");
        const ring = Ring.create({ entries: 64, memory: "mmap" });
        const rx = udpSocket(ring, { host: "127.0.0.1", port: 0 });
        const tx = udpSocket(ring, { host: "127.0.0.1", port: 0 });
        try {
          const N = 9;
          const bufs: Uint8Array[] = [];
          const order: number[] = [];
          const got: Uint8Array[] = [];
          const loop = new RecvLoop(ring, rx.fd, { bufferSize: 65536, onData: (b) => got.push(Uint8Array.from(b)) });
          const sender = new ZcSender(ring, tx.fd, {
            mode: "zc",
            notifUserData,
            destination: { host: "127.0.0.1", port: rx.address.port },
            onReleased: (t: number) => {
              order.push(t);
              bufs[t]!.fill(0xee);
            },
          });
          expect(sender.stats.notifUserData).toBe(notifUserData);
          for (let i = 0; i < N; i++) {
            bufs.push(pattern(4000, i + 1));
            sender.send(bufs[i]!, i);
          }
          ring.runUntil(() => sender.inflight === 0 && got.length === N, 10_000);
          loop.stop();
          console.log(`zc-notif: release order ${order.join(",")} (notifUserData ${notifUserData})`);
          // Out of order did happen (else this test would prove nothing) ...
          expect(order).not.toEqual([...order].sort((a, b) => a - b));
          expect([...order].sort((a, b) => a - b)).toEqual([...Array(N).keys()]);
          // ... and every datagram arrived as it was sent: no buffer was released while the kernel
          // still held its pages.
          const key = (b: Uint8Array) => Buffer.from(b).toString("hex");
          expect(got.map(key).sort()).toEqual([...Array(N).keys()].map((i) => key(pattern(4000, i + 1))).sort());
          expect(sender.stats.anomalies).toBe(0);
        } finally {
          ring.close();
          closeQuietly(rx.fd);
          closeQuietly(tx.fd);
          tc(["qdisc", "del", "dev", "lo", "root"]);
        }
      },
    );
  }
  for (const notifUserData of [true, false]) {
    testIf(
      netemGate,
      `Ring.close while notifications are held back (netem delay): each send released exactly once (notifUserData ${notifUserData})`,
      () => {
        tc(["qdisc", "add", "dev", "lo", "root", "netem", "delay", "500ms"]);
        const ring = Ring.create({ entries: 32, memory: "mmap" });
        const rx = udpSocket(ring, { host: "127.0.0.1", port: 0 });
        const tx = udpSocket(ring, { host: "127.0.0.1", port: 0 });
        try {
          const sent: number[] = [];
          const released = new Map<number, string[]>();
          const sender = new ZcSender(ring, tx.fd, {
            mode: "zc",
            notifUserData,
            destination: { host: "127.0.0.1", port: rx.address.port },
            onSent: (t: number) => sent.push(t),
            onReleased: (t: number, usage: string) => released.set(t, [...(released.get(t) ?? []), usage]),
          });
          for (let i = 0; i < 4; i++) sender.send(pattern(2000, i), i);
          ring.runUntil(() => sent.length === 4, 5000);
          // Every send has its first CQE; their notifications wait behind netem's delay.
          expect(released.size).toBe(0);
          ring.close();
          expect([...released.keys()].sort()).toEqual([0, 1, 2, 3]);
          // Once each: by the notification if close() still reaped it, else by the abandonment.
          console.log(`zc-notif: at close ${JSON.stringify([...released])} (notifUserData ${notifUserData})`);
          expect([...released.values()].map((u) => u.length)).toEqual([1, 1, 1, 1]);
          expect(sender.stats.anomalies).toBe(0);
          expect(sender.inflight).toBe(0);
        } finally {
          ring.close();
          closeQuietly(rx.fd);
          closeQuietly(tx.fd);
          tc(["qdisc", "del", "dev", "lo", "root"]);
        }
      },
    );
  }

  testIf(
    gate,
    "an op table with room for fewer than two entries per send: sends wait in the queue, then all go out",
    () => {
      // Each zero-copy send takes two entries (the send's and its notification's); 5 entries hold
      // two sends at a time.
      const ring = Ring.create({ entries: 32, memory: "mmap", maxInflight: 5 });
      const rx = udpSocket(ring, { host: "127.0.0.1", port: 0 });
      const tx = udpSocket(ring, { host: "127.0.0.1", port: 0 });
      try {
        const got: Uint8Array[] = [];
        const released: number[] = [];
        const loop = new RecvLoop(ring, rx.fd, { bufferSize: 65536, onData: (b) => got.push(Uint8Array.from(b)) });
        const sender = new ZcSender(ring, tx.fd, {
          mode: "zc",
          notifUserData: true,
          destination: { host: "127.0.0.1", port: rx.address.port },
          onReleased: (t: number) => released.push(t),
        });
        for (let i = 0; i < 12; i++) sender.send(pattern(1500, i), i);
        expect(sender.queued).toBeGreaterThan(0);
        ring.runUntil(() => released.length === 12 && got.length === 12, 10_000);
        loop.stop();
        expect(sender.stats.slotWaits).toBeGreaterThan(0);
        expect([...released].sort((a, b) => a - b)).toEqual([...Array(12).keys()]);
        const key = (b: Uint8Array) => Buffer.from(b).toString("hex");
        expect(got.map(key).sort()).toEqual([...Array(12).keys()].map((i) => key(pattern(1500, i))).sort());
        expect(sender.stats.anomalies).toBe(0);
      } finally {
        ring.close();
        closeQuietly(rx.fd);
        closeQuietly(tx.fd);
      }
    },
  );
});
