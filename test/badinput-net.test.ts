// Bad input against sockets through the ring (src/net): bad addresses, ports, fds, closed sockets
// and empty or detached buffers are refused with the library's UringError, and a refusal leaves no
// operation in flight, no SQE behind and no fd open.
import { describe, expect, test } from "bun:test";
import { Ring } from "../src/ring/ring.ts";
import {
  tcpListen,
  tcpConnect,
  tcpAccept,
  udpSocket,
  bindSocket,
  listenSocket,
  connectSocket,
  acceptSocket,
  shutdownSocket,
  closeSocket,
  setSocketOption,
  sendAll,
  recvSome,
  closeQuietly,
  localAddress,
} from "../src/sync.ts";
import { sockaddr, familyOf } from "../src/net/sockaddr.ts";
import { SOL_SOCKET, SO_REUSEADDR } from "../src/abi/net.ts";
import {
  type BadInputRow,
  expectRingHealthy,
  expectUringError,
  openFdCount,
  detached,
} from "./fixtures/reliability-checks.ts";

interface Ctx {
  ring: Ring;
  a: number;
  closed: number;
  /** A port nothing listens on (bound and closed just before). */
  deadPort: number;
}

const rows: BadInputRow<Ctx>[] = [
  { name: "sockaddr: host not numeric", code: "EINVAL", call: () => sockaddr({ host: "example", port: 80 }) },
  { name: "sockaddr: host 999.1.1.1", code: "EINVAL", call: () => sockaddr({ host: "999.1.1.1", port: 80 }) },
  { name: "sockaddr: port -1", code: "EINVAL", call: () => sockaddr({ host: "127.0.0.1", port: -1 }) },
  { name: "sockaddr: port 65536", code: "EINVAL", call: () => sockaddr({ host: "127.0.0.1", port: 65536 }) },
  { name: "sockaddr: port 1.5", code: "EINVAL", call: () => sockaddr({ host: "127.0.0.1", port: 1.5 }) },
  { name: "sockaddr: null", code: "EINVAL", where: "sockaddr", call: () => sockaddr(null as never) },
  { name: "familyOf: a name", code: "EINVAL", where: "familyOf", call: () => familyOf("localhost") },
  { name: "tcpListen: port 70000", code: "EINVAL", call: (x) => tcpListen(x.ring, { host: "127.0.0.1", port: 70000 }) },
  {
    name: "tcpListen: a port in use without reuse",
    code: "EADDRINUSE",
    call: (x) => {
      const l = tcpListen(x.ring, { host: "127.0.0.1", port: 0 });
      try {
        tcpListen(x.ring, { host: "127.0.0.1", port: l.address.port });
      } finally {
        closeQuietly(l.fd);
      }
    },
  },
  {
    name: "tcpConnect: nothing listens",
    code: "ECONNREFUSED",
    call: (x) => tcpConnect(x.ring, { host: "127.0.0.1", port: x.deadPort }),
  },
  {
    name: "bindSocket: fd -1",
    code: "EINVAL",
    where: "bindSocket",
    call: (x) => bindSocket(x.ring, -1, sockaddr({ host: "127.0.0.1", port: 0 })),
  },
  {
    name: "bindSocket: a closed fd",
    code: "EBADF",
    call: (x) => bindSocket(x.ring, x.closed, sockaddr({ host: "127.0.0.1", port: 0 })),
  },
  { name: "listenSocket: a closed fd", code: "EBADF", call: (x) => listenSocket(x.ring, x.closed, 8) },
  {
    name: "connectSocket: fd 1.5",
    code: "EINVAL",
    where: "connectSocket",
    call: (x) => connectSocket(x.ring, 1.5, sockaddr({ host: "127.0.0.1", port: 1 })),
  },
  { name: "acceptSocket: not listening", code: "EINVAL", call: (x) => acceptSocket(x.ring, x.a) },
  { name: "acceptSocket: a closed fd", code: "EBADF", call: (x) => acceptSocket(x.ring, x.closed) },
  { name: "shutdownSocket: a closed fd", code: "EBADF", call: (x) => shutdownSocket(x.ring, x.closed, 2) },
  { name: "closeSocket: fd -5", code: "EINVAL", where: "closeSocket", call: (x) => closeSocket(x.ring, -5) },
  { name: "closeSocket: a closed fd", code: "EBADF", call: (x) => closeSocket(x.ring, x.closed) },
  {
    name: "setSocketOption: a closed fd",
    code: "EBADF",
    call: (x) => setSocketOption(x.ring, x.closed, SOL_SOCKET, SO_REUSEADDR, 1),
  },
  { name: "sendAll: a closed fd", code: "EBADF", call: (x) => sendAll(x.ring, x.closed, new Uint8Array(8)) },
  { name: "sendAll: fd -1", code: "EINVAL", where: "sendAll", call: (x) => sendAll(x.ring, -1, new Uint8Array(8)) },
  { name: "recvSome: a closed fd", code: "EBADF", call: (x) => recvSome(x.ring, x.closed, new Uint8Array(8)) },
  { name: "recvSome: a detached buffer", code: "EINVAL", call: (x) => recvSome(x.ring, x.a, detached()) },
  { name: "recvSome: an empty buffer", code: "EINVAL", call: (x) => recvSome(x.ring, x.a, new Uint8Array(0)) },
  { name: "localAddress: a closed fd", code: "EBADF", call: (x) => localAddress(x.closed) },
  { name: "udpSocket: host not numeric", code: "EINVAL", call: (x) => udpSocket(x.ring, { host: "nowhere", port: 0 }) },
];

describe("sockets through the ring refuse bad input, nothing in flight afterwards", () => {
  for (const row of rows) {
    test(`${row.name} → ${row.code}`, () => {
      const fds = openFdCount();
      const ring = Ring.create({ entries: 16 });
      const l = tcpListen(ring, { host: "127.0.0.1", port: 0 });
      const a = tcpConnect(ring, { host: "127.0.0.1", port: l.address.port });
      const b = tcpAccept(ring, l.fd);
      const dead = tcpListen(ring, { host: "127.0.0.1", port: 0 });
      const deadPort = dead.address.port;
      closeQuietly(dead.fd);
      const gone = udpSocket(ring, { host: "127.0.0.1", port: 0 });
      closeQuietly(gone.fd);
      try {
        expectUringError(() => row.call({ ring, a, closed: gone.fd, deadPort }), row.code, row.where);
        // Whatever the refused call reserved must be gone: no entry in flight, and the next
        // submit must not send a half-written SQE (expectRingHealthy's NOP sees only itself).
        ring.submit();
        ring.completions();
        expect(ring.unknownCqes).toBe(0);
        expectRingHealthy(ring);
      } finally {
        for (const fd of [a, b, l.fd]) closeQuietly(fd);
        ring.close();
      }
      expect(openFdCount()).toBeLessThanOrEqual(fds); // a leak adds fds; other files' async cleanup may close some meanwhile
    });
  }
});
