// Sockets through the ring and through the libc fallback, on 127.0.0.1 and ::1; sockaddr
// encoding round trips; the named errors for a bad fd and a refused connection.
import { describe, expect, test } from "bun:test";
import { c } from "../ffi/index.ts";
import { Ring } from "../src/ring/ring.ts";
import {
  IPPROTO_TCP,
  TCP_NODELAY,
  SHUT_WR,
  AF_INET,
  AF_INET6,
  SOCK_STREAM,
  IORING_CQE_F_MORE,
} from "../src/abi/index.ts";
import { sockaddr, encodeSockaddr, decodeSockaddr } from "../src/net/sockaddr.ts";
import {
  tcpListen,
  tcpConnect,
  tcpAccept,
  udpSocket,
  sendAll,
  recvSome,
  recvExact,
  closeSocket,
  shutdownSocket,
  setSocketOption,
  localAddress,
  peerAddress,
  closeQuietly,
  openSocket,
  bindSocket,
  connectSocket,
  type NetPath,
} from "../src/sync.ts";
import { submitAccept, netSupport } from "../src/net/submit.ts";
import { UringError } from "../src/error.ts";
import { kernelRelease } from "../src/ring/kernel.ts";
import { testIf } from "./helpers.ts";

// Rings in kernel memory (mmap), as in test/zc.test.ts: nothing the kernel writes after close can
// land in memory the JavaScript heap reuses.
const RING_MEMORY = "mmap" as const;

function withRing(fn: (ring: Ring) => void): void {
  const ring = Ring.create({ entries: 64, memory: RING_MEMORY });
  try {
    fn(ring);
  } finally {
    ring.close();
  }
}

function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

describe("sockaddr", () => {
  const cases: Array<[string, string, number]> = [
    ["127.0.0.1", "127.0.0.1", AF_INET],
    ["0.0.0.0", "0.0.0.0", AF_INET],
    ["255.255.255.255", "255.255.255.255", AF_INET],
    ["::1", "::1", AF_INET6],
    ["::", "::", AF_INET6],
    ["fe80::1%3", "fe80::1%3", AF_INET6],
    ["fe80::1%4294967295", "fe80::1%4294967295", AF_INET6],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1", AF_INET6],
    ["2001:DB8::", "2001:db8::", AF_INET6],
    ["::ffff:10.1.2.3", "::ffff:10.1.2.3", AF_INET6],
    ["1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8", AF_INET6],
    ["[::1]", "::1", AF_INET6],
  ];
  for (const [input, canonical, family] of cases) {
    test(`round trip ${input}`, () => {
      const bytes = new Uint8Array(40);
      const view = new DataView(bytes.buffer);
      const len = encodeSockaddr(view, 4, { host: input, port: 4321 });
      expect(len).toBe(family === AF_INET ? 16 : 28);
      const d = decodeSockaddr(view, 4);
      expect(d).toMatchObject({ family, host: canonical, port: 4321 });
    });
  }

  test("ports and addresses are big-endian on the wire, the family host order", () => {
    const a = sockaddr({ host: "127.0.0.1", port: 0x1234 });
    expect(Array.from(a.bytes.subarray(0, 8))).toEqual([AF_INET, 0, 0x12, 0x34, 127, 0, 0, 1]);
    const b = sockaddr({ host: "::1", port: 80 });
    expect(b.length).toBe(28);
    expect(b.bytes[23]).toBe(1);
  });

  const bad: Array<[string, number]> = [
    ["localhost", 80],
    ["1.2.3", 80],
    ["1.2.3.256", 80],
    ["1::2::3", 80],
    ["12345::", 80],
    ["1:2:3:4:5:6:7:8:9", 80],
    ["127.0.0.1", -1],
    ["127.0.0.1", 65536],
    ["127.0.0.1", 1.5],
    // sin6_scope_id is a u32: 2^32 + 1 would wrap to interface 1.
    ["fe80::1%4294967297", 80],
  ];
  for (const [host, port] of bad) {
    test(`refuses ${host} port ${port} before any kernel call`, () => {
      expect(() => sockaddr({ host, port })).toThrow(UringError);
    });
  }
});

function tcpEcho(ring: Ring, host: string, via: NetPath): void {
  const listener = tcpListen(ring, { host, port: 0, via });
  let client = -1,
    server = -1;
  try {
    expect(listener.address.port).toBeGreaterThan(0);
    client = tcpConnect(ring, { host, port: listener.address.port, noDelay: true, via });
    server = tcpAccept(ring, listener.fd, { via });
    expect(peerAddress(server).port).toBe(localAddress(client).port);
    const msg = pattern(100_000, 7);
    // The server echoes what it reads until the client shuts down its write side.
    expect(sendAll(ring, client, msg)).toBe(msg.length);
    shutdownSocket(ring, client, SHUT_WR, { via });
    const buf = new Uint8Array(65536);
    let total = 0;
    for (;;) {
      const n = recvSome(ring, server, buf);
      if (n === 0) break;
      sendAll(ring, server, buf.subarray(0, n));
      total += n;
    }
    expect(total).toBe(msg.length);
    const back = new Uint8Array(msg.length);
    expect(recvExact(ring, client, back)).toBe(msg.length);
    expect(Buffer.from(back).equals(Buffer.from(msg))).toBe(true);
  } finally {
    if (server >= 0) closeSocket(ring, server, { via });
    if (client >= 0) closeSocket(ring, client, { via });
    closeSocket(ring, listener.fd, { via });
  }
}

function udpExchange(ring: Ring, host: string, via: NetPath): void {
  const a = udpSocket(ring, { host, port: 0, via });
  let b: { fd: number } | undefined;
  try {
    b = udpSocket(ring, { host, port: 0, connect: { host, port: a.address.port }, via });
    const bAddr = localAddress(b.fd);
    connectSocket(ring, a.fd, sockaddr({ host, port: bAddr.port }), { via });
    const ping = pattern(1200, 1),
      pong = pattern(900, 2);
    sendAll(ring, b.fd, ping);
    const buf = new Uint8Array(2048);
    expect(recvSome(ring, a.fd, buf)).toBe(ping.length);
    expect(Buffer.from(buf.subarray(0, ping.length)).equals(Buffer.from(ping))).toBe(true);
    sendAll(ring, a.fd, pong);
    expect(recvSome(ring, b.fd, buf)).toBe(pong.length);
    expect(Buffer.from(buf.subarray(0, pong.length)).equals(Buffer.from(pong))).toBe(true);
  } finally {
    if (b) closeSocket(ring, b.fd);
    closeSocket(ring, a.fd);
  }
}

/** Why the forced ring path cannot run here (an opcode it needs is missing), or null. */
const ringPathMissing: string | null = (() => {
  const ring = Ring.create({ entries: 4, memory: RING_MEMORY });
  try {
    const missing = Object.entries(netSupport(ring))
      .filter(([, has]) => !has)
      .map(([name]) => name);
    return missing.length
      ? `the ring-only path needs ${missing.join(", ")} through the ring (SOCKET 5.19, setsockopt 6.7, BIND/LISTEN 6.11); this kernel is ${kernelRelease()}`
      : null;
  } finally {
    ring.close();
  }
})();

for (const host of ["127.0.0.1", "::1"]) {
  for (const via of ["ring", "libc"] as NetPath[]) {
    const reason = via === "ring" ? ringPathMissing : null;
    testIf(reason, `TCP echo over ${host} (${via})`, () => withRing((ring) => tcpEcho(ring, host, via)));
    testIf(reason, `UDP exchange over ${host} (${via})`, () => withRing((ring) => udpExchange(ring, host, via)));
  }
}

test("the ring path really uses the socket opcodes this kernel has", () => {
  withRing((ring) => {
    const s = netSupport(ring);
    expect(s.connect && s.accept && s.close).toBe(true);
    expect(typeof s.bind).toBe("boolean");
  });
});

/** A port nothing listens on: bind a socket to port 0 without listening and keep it open while
 * the test runs, so no other process can take the port in between. */
function deadPort(ring: Ring, host: string): { fd: number; port: number } {
  const fd = openSocket(ring, host.includes(":") ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
  bindSocket(ring, fd, sockaddr({ host, port: 0 }));
  return { fd, port: localAddress(fd).port };
}

for (const via of ["ring", "libc"] as NetPath[]) {
  test(`ECONNREFUSED names the ${via === "ring" ? "opcode" : "libc call"} and the cause`, () => {
    withRing((ring) => {
      const dead = deadPort(ring, "127.0.0.1");
      try {
        let err: unknown;
        try {
          closeQuietly(tcpConnect(ring, { host: "127.0.0.1", port: dead.port, via }));
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(UringError);
        const u = err as UringError;
        expect(u.code).toBe("ECONNREFUSED");
        expect(u.syscall).toBe(via === "ring" ? "IORING_OP_CONNECT" : "connect");
        expect(u.message).toContain("nothing listens");
        expect(u.message).toContain(`127.0.0.1:${dead.port}`);
      } finally {
        closeQuietly(dead.fd);
      }
    });
  });
}

test("a bad fd gives EBADF naming the opcode", () => {
  withRing((ring) => {
    // An fd number far above anything this process has open.
    const fd = 999_999;
    expect(() => closeSocket(ring, fd)).toThrow(/IORING_OP_CLOSE: EBADF/);
    expect(() => shutdownSocket(ring, fd, SHUT_WR)).toThrow(/IORING_OP_SHUTDOWN: EBADF/);
    expect(() => closeSocket(ring, fd, { via: "libc" })).toThrow(/close: EBADF/);
    expect(() => closeSocket(ring, -1)).toThrow(/fd must be a non-negative integer/);
  });
});

test("setsockopt through the ring (URING_CMD) is visible to getsockopt", () => {
  withRing((ring) => {
    const fd = openSocket(ring, AF_INET, SOCK_STREAM, 0);
    try {
      setSocketOption(ring, fd, IPPROTO_TCP, TCP_NODELAY, 1);
      const v = new Int32Array(1),
        len = new Uint32Array([4]);
      expect(c.getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, v, len)).toBe(0);
      expect(v[0]).not.toBe(0);
      setSocketOption(ring, fd, IPPROTO_TCP, TCP_NODELAY, 0, { via: "libc" });
      expect(c.getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, v, len)).toBe(0);
      expect(v[0]).toBe(0);
    } finally {
      closeSocket(ring, fd);
    }
  });
});

test("multishot accept delivers one CQE per connection with F_MORE while armed", () => {
  withRing((ring) => {
    const listener = tcpListen(ring, { host: "127.0.0.1", port: 0 });
    const accepted: number[] = [];
    const clients: number[] = [];
    let moreSeen = 0;
    const st = { accepted, ended: false };
    try {
      const ud = submitAccept(
        ring,
        listener.fd,
        (s: typeof st, res: number, flags: number) => {
          if (res >= 0) s.accepted.push(res);
          if (flags & IORING_CQE_F_MORE) moreSeen++;
          else s.ended = true;
        },
        st,
        true,
      );
      expect(ud).toBeGreaterThan(0);
      for (let i = 0; i < 3; i++) clients.push(tcpConnect(ring, { host: "127.0.0.1", port: listener.address.port }));
      ring.runUntil(() => accepted.length === 3, 5000);
      expect(moreSeen).toBe(3);
      expect(st.ended).toBe(false);
    } finally {
      for (const fd of [...accepted, ...clients]) closeQuietly(fd);
      // Closing the ring cancels the armed accept; its last CQE then comes without F_MORE.
      ring.close();
      closeQuietly(listener.fd);
    }
  });
});

test("an accept that times out is cancelled: the next connection goes to the next accept, no fd leaks", () => {
  const ring = Ring.create({ entries: 16 });
  const l = tcpListen(ring, { host: "127.0.0.1", port: 0 });
  let client = -1,
    server = -1;
  try {
    expect(() => tcpAccept(ring, l.fd, { timeoutMs: 100 })).toThrow(/ETIME/);
    // Nothing of the timed-out accept is left to take the next connection.
    expect(ring.ops.inflight).toBe(0);
    client = tcpConnect(ring, { host: "127.0.0.1", port: l.address.port });
    server = tcpAccept(ring, l.fd, { timeoutMs: 5000 });
    expect(server).toBeGreaterThan(0);
    const msg = new TextEncoder().encode("x");
    expect(c.send(client, msg, 1, 0)).toBe(1);
    const got = new Uint8Array(1);
    expect(c.recv(server, got, 1, 0)).toBe(1);
  } finally {
    ring.close();
    for (const fd of [client, server, l.fd]) if (fd > 0) closeQuietly(fd);
  }
});
