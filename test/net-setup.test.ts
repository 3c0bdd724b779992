// The one socket set-up path (src/net/setup.ts), as the async API and bun-uring/sync use it: which
// form each step takes, what a failed step reports, and that a socket the set-up made never
// outlives its failure.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { c } from "../ffi/index.ts";
import { Ring } from "../src/ring/ring.ts";
import { openRing } from "../src/api/ring.ts";
import {
  AF_INET,
  AF_UNIX,
  IPPROTO_TCP,
  O_NONBLOCK,
  SOCK_STREAM,
  SOL_SOCKET,
  SO_KEEPALIVE,
  SO_ZEROCOPY,
  TCP_NODELAY,
} from "../src/abi/net.ts";
import { IORING_OP_SOCKET } from "../src/abi/sqe.ts";
import { SocketSetup, setUpNow, type NetPath } from "../src/net/setup.ts";
import { ringSetsockopt } from "../src/net/submit.ts";
import { sockaddr } from "../src/net/sockaddr.ts";
import { tcpListen, tcpConnect, closeQuietly } from "../src/sync.ts";
import { getIntOption } from "../src/api/sockopt.ts";
import { UringError } from "../src/error.ts";
import { openFdCount } from "./fixtures/reliability-checks.ts";

/** The file status flags of `fd` (/proc/self/fdinfo's "flags:" line, octal). */
function fdFlags(fd: number): number {
  const line = readFileSync(`/proc/self/fdinfo/${fd}`, "utf8")
    .split("\n")
    .find((l) => l.startsWith("flags:"))!;
  return parseInt(line.split(/\s+/)[1]!, 8);
}

/** Run a set-up on `ring` to the end with the ring's own wait. */
function runSetup(ring: Ring, s: SocketSetup): void {
  s.start();
  ring.runUntil(() => s.done, 5000);
}

const BAD_OPTION = { level: SOL_SOCKET, name: 0x7fff, value: 1, label: "optname 0x7fff" };
const GOOD_OPTION = { level: SOL_SOCKET, name: SO_KEEPALIVE, value: 1, label: "SO_KEEPALIVE" };

describe("SocketSetup", () => {
  for (const via of ["ring", "libc"] as NetPath[]) {
    test(`a refused option (${via}) names the call and the option, and closes the socket it made`, () => {
      using ring = Ring.create({ entries: 8 });
      if (via === "ring" && !ringSetsockopt(ring)) {
        console.log("skip: this kernel has no IORING_OP_URING_CMD");
        return;
      }
      if (via === "ring") {
        // URING_CMD exists from 5.19, its socket setsockopt command from 6.7: ask with a good option.
        const probe = new SocketSetup(ring, { family: AF_INET, type: SOCK_STREAM, options: [GOOD_OPTION], via });
        runSetup(ring, probe);
        if (probe.fd >= 0) c.close(probe.fd);
        if (probe.error?.code === "EOPNOTSUPP") {
          console.log(`skip: this kernel has no SOCKET_URING_OP_SETSOCKOPT (6.7): ${probe.error.message}`);
          return;
        }
      }
      const before = openFdCount();
      const s = new SocketSetup(ring, { family: AF_INET, type: SOCK_STREAM, options: [BAD_OPTION], via });
      runSetup(ring, s);
      expect(s.error).toBeInstanceOf(UringError);
      expect(s.error!.code).toBe("ENOPROTOOPT");
      expect(s.error!.syscall).toBe(via === "ring" ? "IORING_OP_URING_CMD" : "setsockopt");
      expect(s.error!.message).toContain("optname 0x7fff on fd");
      expect(s.fd).toBe(-1);
      expect(openFdCount()).toBe(before);
    });
  }

  test("an fd the caller passed in stays open when a step fails", () => {
    using ring = Ring.create({ entries: 8 });
    const fd = c.socket(AF_INET, SOCK_STREAM, 0);
    try {
      const s = new SocketSetup(ring, { fd, options: [BAD_OPTION] });
      runSetup(ring, s);
      expect(s.error!.code).toBe("ENOPROTOOPT");
      expect(s.fd).toBe(fd);
      expect(getIntOption(fd, SOL_SOCKET, SO_KEEPALIVE, "SO_KEEPALIVE")).toBe(0);
    } finally {
      c.close(fd);
    }
  });

  test("steps run in order through the ring: socket, options, bind, listen", () => {
    using ring = Ring.create({ entries: 8 });
    const s = new SocketSetup(ring, {
      family: AF_INET,
      type: SOCK_STREAM,
      bind: sockaddr({ host: "127.0.0.1", port: 0 }),
      listen: 4,
      options: [{ level: SOL_SOCKET, name: SO_KEEPALIVE, value: 1, label: "SO_KEEPALIVE" }],
    });
    s.start();
    // The first step waits for its CQE: the ring form was taken (SOCKET is there on 5.19+).
    expect(s.done).toBe(!ring.supports(IORING_OP_SOCKET));
    ring.runUntil(() => s.done, 5000);
    expect(s.error).toBeNull();
    try {
      expect(getIntOption(s.fd, SOL_SOCKET, SO_KEEPALIVE, "SO_KEEPALIVE")).toBe(1);
      if (ring.supports(IORING_OP_SOCKET)) expect(fdFlags(s.fd) & O_NONBLOCK).toBe(O_NONBLOCK);
      // It listens: a connect to it succeeds.
      const port = (() => {
        const b = new Uint8Array(28);
        const len = new Uint32Array([28]);
        c.getsockname(s.fd, b, len);
        return (b[2]! << 8) | b[3]!;
      })();
      const client = tcpConnect(ring, { host: "127.0.0.1", port });
      closeQuietly(client);
    } finally {
      c.close(s.fd);
    }
  });

  test("setsockopt's command is probed by its use: an EOPNOTSUPP answer is repeated through libc, which gives the real error", () => {
    using ring = Ring.create({ entries: 8 });
    if (!ringSetsockopt(ring)) {
      console.log("skip: this kernel has no IORING_OP_URING_CMD");
      return;
    }
    // SO_ZEROCOPY on an AF_UNIX socket: EOPNOTSUPP from sock_setsockopt itself, whichever way it
    // is asked, the same answer a kernel without the setsockopt command gives.
    const before = openFdCount();
    const s = new SocketSetup(ring, {
      family: AF_UNIX,
      type: SOCK_STREAM,
      options: [{ level: SOL_SOCKET, name: SO_ZEROCOPY, value: 1, label: "SO_ZEROCOPY" }],
    });
    runSetup(ring, s);
    expect(s.error!.code).toBe("EOPNOTSUPP");
    expect(s.error!.syscall).toBe("setsockopt");
    expect(openFdCount()).toBe(before);
    // This ring's options go through libc from now on; a real option still works that way.
    expect(ringSetsockopt(ring)).toBe(false);
    const l = tcpListen(ring, { host: "127.0.0.1", port: 0 });
    closeQuietly(l.fd);
  });

  test("stop() before a step ends the set-up with its error and closes the socket made so far", () => {
    using ring = Ring.create({ entries: 8 });
    const before = openFdCount();
    const s = new SocketSetup(ring, {
      family: AF_INET,
      type: SOCK_STREAM,
      bind: sockaddr({ host: "127.0.0.1", port: 0 }),
    });
    s.start();
    s.stop(new UringError("test", 125, "stopped"));
    ring.runUntil(() => s.done, 5000);
    expect(s.error!.syscall).toBe("test");
    expect(openFdCount()).toBe(before);
  });

  test("a bad backlog or fd is refused before anything is made", () => {
    using ring = Ring.create({ entries: 8 });
    expect(() => new SocketSetup(ring, { family: AF_INET, type: SOCK_STREAM, listen: -1 })).toThrow(
      /backlog must be an integer/,
    );
    expect(() => new SocketSetup(ring, { fd: -3 })).toThrow(/fd must be a non-negative integer/);
  });

  test("setUpNow runs every step through libc and is done when it returns", () => {
    using ring = Ring.create({ entries: 8 });
    const fd = setUpNow(ring, {
      family: AF_INET,
      type: SOCK_STREAM,
      options: [{ level: IPPROTO_TCP, name: TCP_NODELAY, value: 1, label: "TCP_NODELAY" }],
    });
    try {
      expect(ring.ops.inflight).toBe(0);
      expect(getIntOption(fd, IPPROTO_TCP, TCP_NODELAY, "TCP_NODELAY")).toBe(1);
      expect(fdFlags(fd) & O_NONBLOCK).toBe(0);
    } finally {
      c.close(fd);
    }
  });
});

describe("the async API's sockets come from the same set-up", () => {
  test("connect(): socket, options and CONNECT through the ring; the socket is non-blocking and has its options", async () => {
    await using ring = openRing();
    const l = ring.listen({ host: "127.0.0.1", port: 0 });
    const accepting = l.accept();
    const s = await ring.connect({ host: "127.0.0.1", port: l.port, keepAlive: true });
    const peer = await accepting;
    expect(getIntOption(s.fd, IPPROTO_TCP, TCP_NODELAY, "TCP_NODELAY")).toBe(1);
    expect(getIntOption(s.fd, SOL_SOCKET, SO_KEEPALIVE, "SO_KEEPALIVE")).toBe(1);
    // The ring's SOCKET makes non-blocking sockets; the listener and the accepted socket are too,
    // so every socket the ring drives behaves the same.
    expect(fdFlags(s.fd) & O_NONBLOCK).toBe(O_NONBLOCK);
    expect(fdFlags(l.fd) & O_NONBLOCK).toBe(O_NONBLOCK);
    expect(fdFlags(peer.fd) & O_NONBLOCK).toBe(O_NONBLOCK);
    expect(getIntOption(peer.fd, IPPROTO_TCP, TCP_NODELAY, "TCP_NODELAY")).toBe(1);
  });

  test("connect() with the op table full rejects (a promise, not a throw) and leaves no fd", async () => {
    await using ring = openRing({ maxInflight: 1, maxInflightSends: 1 });
    const l = ring.listen({ host: "127.0.0.1", port: 0 });
    // One accept waits: the op table's only entry is taken.
    const accepting = l.accept();
    accepting.catch(() => {});
    // The driver starts its eventfd reader (one fd of Bun's) once something is in flight.
    await new Promise<void>((r) => setImmediate(r));
    const before = openFdCount();
    let thrown: unknown = null;
    let p: Promise<unknown> | null = null;
    try {
      p = ring.connect({ host: "127.0.0.1", port: l.port });
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeNull();
    const err = await p!.then(
      () => null,
      (e) => e,
    );
    expect(err).toBeInstanceOf(UringError);
    expect(openFdCount()).toBe(before);
  });

  test("an abort during the set-up rejects with the abort error and leaves no fd", async () => {
    await using ring = openRing();
    const l = ring.listen({ host: "127.0.0.1", port: 0, backlog: 0 });
    const before = openFdCount();
    for (let i = 0; i < 20; i++) {
      const ac = new AbortController();
      const p = ring.connect({ host: "127.0.0.1", port: l.port, signal: ac.signal });
      // Aborted within the same turn: the set-up's first step has not completed yet.
      ac.abort();
      const r = await p.then(
        (sock) => sock,
        (e) => e as UringError,
      );
      if (!(r instanceof UringError)) {
        await r.close();
        continue;
      }
      const err = r;
      expect(err.code).toBe("ECANCELED");
      expect(err.syscall).toBe("IORING_OP_CONNECT");
    }
    await l.close();
    expect(openFdCount()).toBe(before - 1);
  });
});

describe("the synchronous helpers wait for the set-up step by step", () => {
  test("a connect nobody answers (a listener with a full backlog) times out naming the step, is cancelled, and leaves no fd", () => {
    using ring = Ring.create({ entries: 16 });
    const l = tcpListen(ring, { host: "127.0.0.1", port: 0, backlog: 0 });
    const filled: number[] = [];
    try {
      // backlog 0 holds one connection the listener never accepts; later SYNs are dropped.
      for (let i = 0; i < 2; i++) {
        try {
          filled.push(tcpConnect(ring, { host: "127.0.0.1", port: l.address.port, timeoutMs: 300 }));
        } catch {
          break;
        }
      }
      const before = openFdCount();
      let err: unknown = null;
      try {
        filled.push(tcpConnect(ring, { host: "127.0.0.1", port: l.address.port, timeoutMs: 200 }));
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(UringError);
      const u = err as UringError;
      expect(u.code).toBe("ETIME");
      expect(u.syscall).toBe("IORING_OP_CONNECT");
      expect(u.message).toContain("no completion within 200 ms, so the operation was cancelled");
      expect(openFdCount()).toBe(before);
      expect(ring.ops.inflight).toBe(0);
    } finally {
      for (const fd of filled) closeQuietly(fd);
      closeQuietly(l.fd);
    }
  });
});

describe("teardown during set-ups", () => {
  test("closeNow() with 50 connect set-ups in progress settles every one and leaves no fd", async () => {
    const before = openFdCount();
    const ring = openRing();
    const l = ring.listen({ host: "127.0.0.1", port: 0 });
    const settled = Array.from({ length: 50 }, () =>
      ring.connect({ host: "127.0.0.1", port: l.port }).then(
        (s) => s.close().then(() => "connected"),
        (e: UringError) => e.code,
      ),
    );
    ring.closeNow();
    const outcomes = await Promise.all(settled);
    for (const o of outcomes) expect(["connected", "ECONNREFUSED", "ECANCELED", "EBADF"]).toContain(o);
    await new Promise<void>((r) => setTimeout(r, 20));
    expect(openFdCount()).toBe(before);
  });
});
