// bun-uring/sync: synchronous socket helpers over a Ring, for scripts, tools and tests. Each call
// queues its operation, drives the ring with runUntil until the completion arrives (or timeoutMs,
// default 10 s, passes: ETIME naming the opcode, and the operation is cancelled) and returns the
// result or throws a UringError. Sockets are set up through the one set-up path of
// src/net/setup.ts: the ring where the kernel has the opcode (SOCKET 5.19, BIND and LISTEN 6.11,
// CONNECT 5.5, setsockopt through URING_CMD 6.7), libc otherwise; {via: "libc"} forces the libc
// path and {via: "ring"} refuses the fallback. ACCEPT (5.5), SHUTDOWN (5.11), CLOSE (5.6), SEND
// and RECV go through the ring the same way. They block the thread, and are refused with EDEADLK
// from inside a completion handler of the ring (the wait could never end): inside Bun's event loop
// use the async API in "bun-uring". RecvLoop keeps one RECV armed on a socket and counts (or hands
// over) what arrives while the caller runs the ring: a plain receiver to measure against.
//
// Errors: UringError with syscall "IORING_OP_CONNECT" (or "connect" on the libc path), code
// "ECONNREFUSED", and the usual cause, e.g.
// "IORING_OP_CONNECT: ECONNREFUSED (fd 7 to 127.0.0.1:1) — nothing listens on that address and port".
import { addressOf, c, errno } from "../ffi/index.ts";
import * as Q from "./abi/sqe.ts";
import {
  AF_INET6,
  IPPROTO_IPV6,
  IPPROTO_TCP,
  IPV6_V6ONLY,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOCK_STREAM,
  SOL_SOCKET,
  SO_REUSEADDR,
  TCP_NODELAY,
  MSG_WAITALL,
  MSG_NOSIGNAL,
} from "./abi/net.ts";
import { prepCancel64, prepRecv, prepSend } from "./ops/prep.ts";
import type { Ring } from "./ring/ring.ts";
import type { CompletionHandler } from "./ring/optable.ts";
import { UringError, invalidArgument } from "./error.ts";
import {
  type DecodedAddress,
  type Sockaddr,
  type SocketAddress,
  decodeSockaddr,
  sockaddr,
  SOCKADDR_RETURN_BYTES,
} from "./net/sockaddr.ts";
import { checkFd, socketError, submitAccept, submitClose, submitShutdown } from "./net/submit.ts";
import { type IntOption, type NetPath, type SocketPlan, SocketSetup, checkBacklog, localAddress } from "./net/setup.ts";

export { RecvLoop, type RecvLoopOptions } from "./net/recv.ts";
export { localAddress, peerAddress, type NetPath } from "./net/setup.ts";

/** Options shared by the synchronous helpers. */
export interface SyncOptions {
  /** Ring or libc (default "auto": the ring when the kernel has the opcode). */
  via?: NetPath;
  /** Bound on the wait for each operation. Default 10 000 ms. */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;

interface Waiter {
  res: number;
  done: boolean;
}

function onceHandler(w: Waiter, res: number): void {
  w.res = res;
  w.done = true;
}

/** How long a timed-out operation's cancel may take before the helper gives up on it. */
const CANCEL_WAIT_MS = 1000;

/** Run one op to completion and return its res, throwing the opcode's error when it is < 0.
 * `submit` prepares the op and returns its user_data. On a timeout the op is cancelled before
 * the ETIME error is thrown, so it cannot complete later behind the caller's back (an ACCEPT left
 * pending would take the next connection and leak its fd); if it completed with a new fd in the
 * meantime (SOCKET, ACCEPT), that fd is closed. */
function runOne(ring: Ring, op: number, detail: string, timeoutMs: number, submit: (w: Waiter) => number): number {
  // Refused before anything is submitted: from a handler the wait could never end, and the
  // operation (a new socket) would be left behind.
  ring.assertCanWait(`synchronous IORING_OP_${Q.opcodeName(op)} (${detail})`);
  const w: Waiter = { res: 0, done: false };
  const ud = submit(w);
  try {
    ring.runUntil(() => w.done, timeoutMs);
  } catch (e) {
    if (!w.done) cancelAndWait(ring, ud, () => w.done);
    if (w.done && w.res >= 0 && (op === Q.IORING_OP_SOCKET || op === Q.IORING_OP_ACCEPT)) c.close(w.res);
    throw waitError(e, `IORING_OP_${Q.opcodeName(op)}`, detail, timeoutMs);
  }
  if (w.res < 0) throw socketError(op, w.res, detail);
  return w.res;
}

/** ASYNC_CANCEL of the operation `ud` (untracked: user_data 0), then a bounded wait for `done`.
 * When the cancel cannot be waited for, the operation stays in flight until the ring closes. */
function cancelAndWait(ring: Ring, ud: number, done: () => boolean): void {
  if (ring.isClosed) return;
  try {
    const slot = ring.getSqe();
    prepCancel64(ring.sq, slot, ud, 0);
    ring.setUserData(slot, 0);
    ring.runUntil(done, CANCEL_WAIT_MS);
  } catch {
    // Given up: see above.
  }
}

/** What a failed wait for `name` throws: the wait's own ETIME names Ring.runUntil, and the caller
 * asked for this operation, so it is named instead; anything else as it is. */
function waitError(e: unknown, name: string, detail: string, timeoutMs: number): unknown {
  if (!(e instanceof UringError && e.syscall === "Ring.runUntil" && e.code === "ETIME")) return e;
  return new UringError(
    name,
    e.errno,
    `${detail}: no completion within ${timeoutMs} ms, so the operation was cancelled`,
    "nothing answered in time: check the peer (does something listen? is its backlog full?) or raise timeoutMs",
    { cause: e },
  );
}

function libcCheck(call: string, ret: number, detail: string): number {
  if (ret < 0) throw new UringError(call, errno(), detail);
  return ret;
}

/** Run a socket set-up (src/net/setup.ts) to the end, bounding the wait for each of its steps by
 * `timeoutMs`; returns the fd. On a timeout the step in flight is cancelled before the ETIME error
 * is thrown, so nothing completes later behind the caller's back, and a socket the set-up made is
 * closed. */
function runSetup(ring: Ring, plan: SocketPlan, timeoutMs: number, where: string): number {
  // Refused before anything is submitted: from a handler the wait could never end, and the
  // operation (a new socket) would be left behind.
  ring.assertCanWait(`synchronous ${where}`);
  const s = new SocketSetup(ring, plan);
  s.start();
  while (!s.done) {
    const step = s.steps;
    try {
      ring.runUntil(() => s.done || s.steps !== step, timeoutMs);
    } catch (e) {
      const err = waitError(e, s.stepName, s.stepDetail, timeoutMs);
      // The step in flight is cancelled; its CQE (now, or at the ring's close) ends the set-up
      // and closes a socket it made.
      const ud = s.stop(err instanceof UringError ? err : new UringError(where, 0, String(err)));
      if (ud >= 0) cancelAndWait(ring, ud, () => s.done);
      throw err;
    }
  }
  if (s.error !== null) throw s.error;
  return s.fd;
}

function run(ring: Ring, plan: SocketPlan, o: SyncOptions, where: string): number {
  return runSetup(ring, { ...plan, via: o.via }, o.timeoutMs ?? DEFAULT_TIMEOUT_MS, where);
}

function useRing(ring: Ring, op: number, via: NetPath | undefined, where: string): boolean {
  if (via === "libc") return false;
  if (ring.supports(op)) return true;
  if (via === "ring") ring.requireOp(op, where);
  return false;
}

/** A new socket fd (SOCKET, or socket(2)). The ring path makes it non-blocking (see
 * submitSocket); the libc path keeps it blocking, as connect(2) and accept4(2) then expect. */
export function openSocket(ring: Ring, domain: number, type: number, protocol: number, o: SyncOptions = {}): number {
  return run(ring, { family: domain, type, protocol }, o, `openSocket (domain ${domain}, type ${type})`);
}

/** setsockopt with an int value (URING_CMD on 6.7+, setsockopt(2) otherwise). */
export function setSocketOption(
  ring: Ring,
  fd: number,
  level: number,
  optname: number,
  value: number,
  o: SyncOptions = {},
): void {
  checkFd("setSocketOption", fd);
  run(
    ring,
    { fd, options: [{ level, name: optname, value, label: `level ${level}, optname ${optname}` }] },
    o,
    `setSocketOption (fd ${fd})`,
  );
}

/** Bind `fd` to `addr` (BIND, or bind(2)). */
export function bindSocket(ring: Ring, fd: number, addr: Sockaddr, o: SyncOptions = {}): void {
  checkFd("bindSocket", fd);
  run(ring, { fd, bind: addr }, o, `bindSocket (fd ${fd})`);
}

/** Mark `fd` listening (LISTEN, or listen(2)). */
export function listenSocket(ring: Ring, fd: number, backlog: number, o: SyncOptions = {}): void {
  checkFd("listenSocket", fd);
  checkBacklog("listenSocket", backlog);
  run(ring, { fd, listen: backlog }, o, `listenSocket (fd ${fd})`);
}

/** Connect `fd` to `addr` (CONNECT, or connect(2) on the blocking socket). */
export function connectSocket(ring: Ring, fd: number, addr: Sockaddr, o: SyncOptions = {}): void {
  checkFd("connectSocket", fd);
  run(ring, { fd, connect: addr }, o, `connectSocket (fd ${fd})`);
}

/** Accept one connection on listening `fd` (ACCEPT, or accept4(2), which blocks this thread). */
export function acceptSocket(ring: Ring, fd: number, o: SyncOptions = {}): number {
  checkFd("acceptSocket", fd);
  if (useRing(ring, Q.IORING_OP_ACCEPT, o.via, "acceptSocket")) {
    return runOne(ring, Q.IORING_OP_ACCEPT, `listening fd ${fd}`, o.timeoutMs ?? DEFAULT_TIMEOUT_MS, (w) =>
      submitAccept(ring, fd, onceHandler, w),
    );
  }
  return libcCheck("accept4", c.accept4(fd, null, null, SOCK_CLOEXEC), `listening fd ${fd}`);
}

/** shutdown(fd, how) (SHUTDOWN, or shutdown(2)). */
export function shutdownSocket(ring: Ring, fd: number, how: number, o: SyncOptions = {}): void {
  checkFd("shutdownSocket", fd);
  if (useRing(ring, Q.IORING_OP_SHUTDOWN, o.via, "shutdownSocket")) {
    runOne(ring, Q.IORING_OP_SHUTDOWN, `fd ${fd}, how ${how}`, o.timeoutMs ?? DEFAULT_TIMEOUT_MS, (w) =>
      submitShutdown(ring, fd, how, onceHandler, w),
    );
    return;
  }
  libcCheck("shutdown", c.shutdown(fd, how), `fd ${fd}, how ${how}`);
}

/** close(fd) (CLOSE, or close(2)). */
export function closeSocket(ring: Ring, fd: number, o: SyncOptions = {}): void {
  checkFd("closeSocket", fd);
  if (useRing(ring, Q.IORING_OP_CLOSE, o.via, "closeSocket")) {
    runOne(ring, Q.IORING_OP_CLOSE, `fd ${fd}`, o.timeoutMs ?? DEFAULT_TIMEOUT_MS, (w) =>
      submitClose(ring, fd, onceHandler, w),
    );
    return;
  }
  libcCheck("close", c.close(fd), `fd ${fd}`);
}

/** Close `fd` with close(2), ignoring errors: for cleanup paths where the fd may be gone. */
export function closeQuietly(fd: number): void {
  if (Number.isInteger(fd) && fd >= 0) c.close(fd);
}

export interface TcpListenOptions extends SyncOptions, SocketAddress {
  /** listen(2) backlog. Default 128. */
  backlog?: number;
  /** SO_REUSEADDR. Default true. */
  reuseAddr?: boolean;
  /** IPV6_V6ONLY for an IPv6 listener. Default: the system's setting. */
  ipv6Only?: boolean;
}

/** A bound socket and the address it got (the kernel's port when 0 was asked). */
export interface BoundSocket {
  fd: number;
  address: DecodedAddress;
}

/** A listening TCP socket on `host:port` (port 0: the kernel picks; read it from `address`). */
export function tcpListen(ring: Ring, o: TcpListenOptions): BoundSocket {
  const addr = sockaddr(o);
  const options: IntOption[] = [];
  if (o.reuseAddr !== false) options.push({ level: SOL_SOCKET, name: SO_REUSEADDR, value: 1, label: "SO_REUSEADDR" });
  if (o.ipv6Only !== undefined && addr.family === AF_INET6)
    options.push({ level: IPPROTO_IPV6, name: IPV6_V6ONLY, value: o.ipv6Only ? 1 : 0, label: "IPV6_V6ONLY" });
  const backlog = checkBacklog("tcpListen", o.backlog ?? 128);
  const fd = run(
    ring,
    { family: addr.family, type: SOCK_STREAM, options, bind: addr, listen: backlog },
    o,
    "tcpListen",
  );
  return withAddress(fd);
}

/** `fd` with the address it is bound to; a failed getsockname closes `fd`. */
function withAddress(fd: number): BoundSocket {
  try {
    return { fd, address: localAddress(fd) };
  } catch (e) {
    c.close(fd);
    throw e;
  }
}

export interface TcpConnectOptions extends SyncOptions, SocketAddress {
  /** TCP_NODELAY. Default false. */
  noDelay?: boolean;
}

/** A TCP socket connected to `host:port`. */
export function tcpConnect(ring: Ring, o: TcpConnectOptions): number {
  const addr = sockaddr(o);
  const options = o.noDelay ? [{ level: IPPROTO_TCP, name: TCP_NODELAY, value: 1, label: "TCP_NODELAY" }] : undefined;
  return run(ring, { family: addr.family, type: SOCK_STREAM, options, connect: addr }, o, "tcpConnect");
}

/** Accept one connection on `listenFd`. */
export function tcpAccept(ring: Ring, listenFd: number, o: SyncOptions = {}): number {
  return acceptSocket(ring, listenFd, o);
}

export interface UdpSocketOptions extends SyncOptions, SocketAddress {
  /** Connect the socket to this peer (then sends need no destination). */
  connect?: SocketAddress;
}

/** A UDP socket bound to `host:port` (0: any port), optionally connected to a peer. */
export function udpSocket(ring: Ring, o: UdpSocketOptions): BoundSocket {
  const addr = sockaddr(o);
  const connect = o.connect ? sockaddr(o.connect) : undefined;
  const fd = run(ring, { family: addr.family, type: SOCK_DGRAM, bind: addr, connect }, o, "udpSocket");
  return withAddress(fd);
}

/** Send all of `bytes` on a connected socket with IORING_OP_SEND (MSG_WAITALL, so the kernel
 * retries a short send itself); returns the byte count. `bytes` is held until the CQE. */
export function sendAll(ring: Ring, fd: number, bytes: Uint8Array, o: SyncOptions = {}): number {
  checkFd("sendAll", fd);
  checkBytes("sendAll", bytes);
  let done = 0;
  while (done < bytes.length) {
    const part = done === 0 ? bytes : bytes.subarray(done);
    // The address is taken before an SQE is reserved, so a refusal leaves no half-written SQE.
    const address = addressOf(part);
    const n = runOne(
      ring,
      Q.IORING_OP_SEND,
      `fd ${fd}, ${part.length} bytes`,
      o.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      (w) => {
        const slot = ring.begin(onceHandler as CompletionHandler, w, part);
        prepSend(ring.sq, slot, fd, address, part.length, MSG_WAITALL | MSG_NOSIGNAL);
        return ring.userDataOf(slot);
      },
    );
    done += n;
  }
  return done;
}

function checkBytes(where: string, buf: Uint8Array): void {
  if (!(buf instanceof Uint8Array) || buf.byteLength === 0)
    throw invalidArgument(where, "the buffer must be a non-empty Uint8Array (not detached)");
}

/** One IORING_OP_RECV into `buf`; returns the byte count (0: the peer closed). */
export function recvSome(ring: Ring, fd: number, buf: Uint8Array, o: SyncOptions = {}): number {
  checkFd("recvSome", fd);
  checkBytes("recvSome", buf);
  const address = addressOf(buf);
  return runOne(ring, Q.IORING_OP_RECV, `fd ${fd}, ${buf.length} bytes`, o.timeoutMs ?? DEFAULT_TIMEOUT_MS, (w) => {
    const slot = ring.begin(onceHandler as CompletionHandler, w, buf);
    prepRecv(ring.sq, slot, fd, address, buf.length, 0);
    return ring.userDataOf(slot);
  });
}

/** Receive until `buf` is full or the peer closes; returns the byte count. */
export function recvExact(ring: Ring, fd: number, buf: Uint8Array, o: SyncOptions = {}): number {
  let got = 0;
  while (got < buf.length) {
    const n = recvSome(ring, fd, got === 0 ? buf : buf.subarray(got), o);
    if (n === 0) break;
    got += n;
  }
  return got;
}
