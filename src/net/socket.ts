// Sockets through the ring: SOCKET (5.19), BIND and LISTEN (6.11), CONNECT and ACCEPT (5.5,
// multishot accept 5.19), SHUTDOWN (5.11), CLOSE (5.6) and setsockopt as a socket URING_CMD (6.7),
// each with the libc call it replaces as the fallback for kernels without the opcode. Two layers:
// `submit*` functions queue one SQE and call a CompletionHandler with the raw CQE (what an event
// loop builds on; no allocation beyond the op-table entry), and synchronous helpers (`tcpListen`,
// `tcpConnect`, ...) that drive the ring with runUntil for tests, scripts and benchmarks.
import { addressOf, c, errno } from "../../ffi/index.ts";
import * as Q from "../abi/sqe.ts";
import {
  AF_INET, AF_INET6, IPPROTO_IPV6, IPPROTO_TCP, IPV6_V6ONLY, SOCK_CLOEXEC, SOCK_DGRAM, SOCK_STREAM,
  SOL_SOCKET, SO_REUSEADDR, TCP_NODELAY, MSG_WAITALL, MSG_NOSIGNAL, SOCK_NONBLOCK,
} from "../abi/net.ts";
import { prepAccept, prepBind, prepCancel64, prepClose, prepConnect, prepListen, prepMultishotAccept, prepRecv, prepSend, prepSetsockopt, prepShutdown, prepSocket } from "../ops/prep.ts";
import type { Ring } from "../ring/ring.ts";
import type { CompletionHandler } from "../ring/optable.ts";
import { kernelAtLeast } from "../ring/kernel.ts";
import { UringError, invalidArgument, unsupported, shown } from "../error.ts";
import { type DecodedAddress, type Sockaddr, type SocketAddress, decodeSockaddr, formatAddress, sockaddr, SOCKADDR_RETURN_BYTES } from "./sockaddr.ts";

/** Which path a synchronous helper takes: the ring when the kernel has the opcode ("auto"), the
 * ring or an error naming the kernel that has it ("ring"), or the libc call ("libc"). */
export type NetPath = "auto" | "ring" | "libc";

/** The error for a failed socket operation: the opcode (or libc call), the errno name, the
 * address or fd involved, and the usual cause. `res` is the CQE result (-errno). */
export function socketError(op: number, res: number, detail?: string): UringError {
  return new UringError(`IORING_OP_${Q.opcodeName(op)}`, -res, detail);
}

function checkFd(where: string, fd: number): void {
  if (!Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff) throw invalidArgument(where, `fd must be a non-negative integer, got ${shown(fd)}`);
}


/** Reserve an op-table entry and an SQE in that order, so a full op table never leaves a
 * half-written SQE behind. Returns [user_data, slot]. */
function reserve(ring: Ring, handler: CompletionHandler, data: unknown, hold: unknown): [number, number] {
  const ud = ring.ops.add(handler, data, hold);
  const slot = ring.getSqeFor(ud);
  return [ud, slot];
}

// ---- callback form: one SQE each, the handler sees every CQE of it ----

/** IORING_OP_SOCKET (5.19): the CQE's res is the new fd. SOCK_CLOEXEC | SOCK_NONBLOCK are added
 * to `type`: the ring polls a non-blocking socket when it would block, where a blocking one can
 * leave an io-wq worker asleep inside sendmsg (io_wq_submit_work issues without NONBLOCK). */
export function submitSocket<T>(ring: Ring, domain: number, type: number, protocol: number, handler: CompletionHandler<T>, data: T): number {
  ring.requireOp(Q.IORING_OP_SOCKET, "submitSocket");
  const [ud, slot] = reserve(ring, handler, data, undefined);
  prepSocket(ring.sq, slot, domain, type | SOCK_CLOEXEC | SOCK_NONBLOCK, protocol, 0);
  ring.setUserData(slot, ud);
  return ud;
}

/** IORING_OP_BIND (6.11). The address is copied into the op's scratch block: `addr` may be reused
 * at once. */
export function submitBind<T>(ring: Ring, fd: number, addr: Sockaddr, handler: CompletionHandler<T>, data: T): number {
  checkFd("submitBind", fd);
  ring.requireOp(Q.IORING_OP_BIND, "submitBind");
  const [ud, slot] = reserve(ring, handler, data, undefined);
  ring.ops.scratch.set(addr.bytes, ring.ops.scratchOffset(ud));
  prepBind(ring.sq, slot, fd, ring.ops.scratchAddressOf(ud), addr.length);
  ring.setUserData(slot, ud);
  return ud;
}

/** IORING_OP_LISTEN (6.11). */
export function submitListen<T>(ring: Ring, fd: number, backlog: number, handler: CompletionHandler<T>, data: T): number {
  checkFd("submitListen", fd);
  ring.requireOp(Q.IORING_OP_LISTEN, "submitListen");
  const [ud, slot] = reserve(ring, handler, data, undefined);
  prepListen(ring.sq, slot, fd, backlog);
  ring.setUserData(slot, ud);
  return ud;
}

/** IORING_OP_CONNECT (5.5). The address is copied into the op's scratch block. res 0 = connected. */
export function submitConnect<T>(ring: Ring, fd: number, addr: Sockaddr, handler: CompletionHandler<T>, data: T): number {
  checkFd("submitConnect", fd);
  const [ud, slot] = reserve(ring, handler, data, undefined);
  ring.ops.scratch.set(addr.bytes, ring.ops.scratchOffset(ud));
  prepConnect(ring.sq, slot, fd, ring.ops.scratchAddressOf(ud), addr.length);
  ring.setUserData(slot, ud);
  return ud;
}

/** IORING_OP_ACCEPT (5.5): res is the accepted fd (SOCK_CLOEXEC | SOCK_NONBLOCK, see submitSocket). With `multishot` (5.19) one
 * SQE yields a CQE per connection, each with IORING_CQE_F_MORE while the accept stays armed; a
 * CQE without F_MORE ends it (re-arm then). The peer's address is not collected: read it with
 * `peerAddress(fd)`. */
export function submitAccept<T>(ring: Ring, fd: number, handler: CompletionHandler<T>, data: T, multishot = false): number {
  checkFd("submitAccept", fd);
  const [ud, slot] = reserve(ring, handler, data, undefined);
  if (multishot) prepMultishotAccept(ring.sq, slot, fd, 0, 0, SOCK_CLOEXEC | SOCK_NONBLOCK);
  else prepAccept(ring.sq, slot, fd, 0, 0, SOCK_CLOEXEC | SOCK_NONBLOCK);
  ring.setUserData(slot, ud);
  return ud;
}

/** IORING_OP_SHUTDOWN (5.11): `how` is SHUT_RD, SHUT_WR or SHUT_RDWR. */
export function submitShutdown<T>(ring: Ring, fd: number, how: number, handler: CompletionHandler<T>, data: T): number {
  checkFd("submitShutdown", fd);
  ring.requireOp(Q.IORING_OP_SHUTDOWN, "submitShutdown");
  const [ud, slot] = reserve(ring, handler, data, undefined);
  prepShutdown(ring.sq, slot, fd, how);
  ring.setUserData(slot, ud);
  return ud;
}

/** IORING_OP_CLOSE (5.6). */
export function submitClose<T>(ring: Ring, fd: number, handler: CompletionHandler<T>, data: T): number {
  checkFd("submitClose", fd);
  const [ud, slot] = reserve(ring, handler, data, undefined);
  prepClose(ring.sq, slot, fd);
  ring.setUserData(slot, ud);
  return ud;
}

/** Whether setsockopt can go through the ring: IORING_OP_URING_CMD with
 * SOCKET_URING_OP_SETSOCKOPT, added in Linux 6.7 (an opcode probe cannot tell, since URING_CMD
 * itself is older). */
export function ringSetsockopt(ring: Ring): boolean {
  return ring.supports(Q.IORING_OP_URING_CMD) && kernelAtLeast("6.7", ring.capabilities.kernel);
}

/** setsockopt(fd, level, optname, &value, 4) as SOCKET_URING_OP_SETSOCKOPT (6.7); the int value
 * lives in the op's scratch block. */
export function submitSetsockopt<T>(ring: Ring, fd: number, level: number, optname: number, value: number, handler: CompletionHandler<T>, data: T): number {
  checkFd("submitSetsockopt", fd);
  if (!ringSetsockopt(ring)) throw unsupported("submitSetsockopt", "setsockopt through IORING_OP_URING_CMD (SOCKET_URING_OP_SETSOCKOPT)", "6.7", ring.capabilities.kernel);
  const [ud, slot] = reserve(ring, handler, data, undefined);
  ring.ops.scratchView.setInt32(ring.ops.scratchOffset(ud), value, true);
  prepSetsockopt(ring.sq, slot, fd, level, optname, ring.ops.scratchAddressOf(ud), 4);
  ring.setUserData(slot, ud);
  return ud;
}

// ---- synchronous helpers ----

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
    if (!w.done && !ring.isClosed) {
      try {
        const slot = ring.getSqe();
        prepCancel64(ring.sq, slot, ud, 0);
        ring.setUserData(slot, 0);
        ring.runUntil(() => w.done, CANCEL_WAIT_MS);
      } catch {
        // The cancel could not be waited for: the op stays in flight until the ring closes.
      }
    }
    if (w.done && w.res >= 0 && (op === Q.IORING_OP_SOCKET || op === Q.IORING_OP_ACCEPT)) c.close(w.res);
    // The wait's own ETIME names Ring.runUntil; the caller asked for this operation.
    if (e instanceof UringError && e.syscall === "Ring.runUntil" && e.code === "ETIME") {
      throw new UringError(`IORING_OP_${Q.opcodeName(op)}`, e.errno, `${detail}: no completion within ${timeoutMs} ms, so the operation was cancelled`,
        "nothing answered in time: check the peer (does something listen? is its backlog full?) or raise timeoutMs", { cause: e });
    }
    throw e;
  }
  if (w.res < 0) throw socketError(op, w.res, detail);
  return w.res;
}

function libcCheck(call: string, ret: number, detail: string): number {
  if (ret < 0) throw new UringError(call, errno(), detail);
  return ret;
}

function useRing(ring: Ring, op: number, via: NetPath | undefined, where: string): boolean {
  if (via === "libc") return false;
  if (ring.supports(op)) return true;
  if (via === "ring") ring.requireOp(op, where);
  return false;
}

/** Options shared by the synchronous helpers. */
export interface SyncOptions {
  /** Ring or libc (default "auto": the ring when the kernel has the opcode). */
  via?: NetPath;
  /** Bound on the wait for each operation. Default 10 000 ms. */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;

/** A new socket fd (SOCKET, or socket(2)). The ring path makes it non-blocking (see
 * submitSocket); the libc path keeps it blocking, as connect(2) and accept4(2) then expect. */
export function openSocket(ring: Ring, domain: number, type: number, protocol: number, o: SyncOptions = {}): number {
  if (useRing(ring, Q.IORING_OP_SOCKET, o.via, "openSocket")) {
    return runOne(ring, Q.IORING_OP_SOCKET, `domain ${domain}, type ${type}`, o.timeoutMs ?? DEFAULT_TIMEOUT_MS, (w) => submitSocket(ring, domain, type, protocol, onceHandler, w));
  }
  return libcCheck("socket", c.socket(domain, type | SOCK_CLOEXEC, protocol), `domain ${domain}, type ${type}`);
}

/** setsockopt with an int value (URING_CMD on 6.7+, setsockopt(2) otherwise). */
export function setSocketOption(ring: Ring, fd: number, level: number, optname: number, value: number, o: SyncOptions = {}): void {
  checkFd("setSocketOption", fd);
  const detail = `fd ${fd}, level ${level}, optname ${optname}`;
  if (o.via !== "libc" && ringSetsockopt(ring)) {
    runOne(ring, Q.IORING_OP_URING_CMD, `SOCKET_URING_OP_SETSOCKOPT ${detail}`, o.timeoutMs ?? DEFAULT_TIMEOUT_MS, (w) => submitSetsockopt(ring, fd, level, optname, value, onceHandler, w));
    return;
  }
  if (o.via === "ring") throw unsupported("setSocketOption", "setsockopt through IORING_OP_URING_CMD", "6.7", ring.capabilities.kernel);
  const v = new Int32Array([value]);
  libcCheck("setsockopt", c.setsockopt(fd, level, optname, v, 4), detail);
}

/** Bind `fd` to `addr` (BIND, or bind(2)). */
export function bindSocket(ring: Ring, fd: number, addr: Sockaddr, o: SyncOptions = {}): void {
  checkFd("bindSocket", fd);
  const detail = `fd ${fd} to ${formatAddress(addr)}`;
  if (useRing(ring, Q.IORING_OP_BIND, o.via, "bindSocket")) {
    runOne(ring, Q.IORING_OP_BIND, detail, o.timeoutMs ?? DEFAULT_TIMEOUT_MS, (w) => submitBind(ring, fd, addr, onceHandler, w));
    return;
  }
  libcCheck("bind", c.bind(fd, addr.bytes, addr.length), detail);
}

/** A listen(2) backlog: an integer 0..2^31-1 (the kernel caps it at net.core.somaxconn). */
export function checkBacklog(where: string, backlog: number): number {
  if (!Number.isInteger(backlog) || backlog < 0 || backlog > 0x7fffffff) throw invalidArgument(where, `backlog must be an integer 0..2147483647, got ${String(backlog)}`);
  return backlog;
}

/** Mark `fd` listening (LISTEN, or listen(2)). */
export function listenSocket(ring: Ring, fd: number, backlog: number, o: SyncOptions = {}): void {
  checkFd("listenSocket", fd);
  checkBacklog("listenSocket", backlog);
  if (useRing(ring, Q.IORING_OP_LISTEN, o.via, "listenSocket")) {
    runOne(ring, Q.IORING_OP_LISTEN, `fd ${fd}, backlog ${backlog}`, o.timeoutMs ?? DEFAULT_TIMEOUT_MS, (w) => submitListen(ring, fd, backlog, onceHandler, w));
    return;
  }
  libcCheck("listen", c.listen(fd, backlog), `fd ${fd}, backlog ${backlog}`);
}

/** Connect `fd` to `addr` (CONNECT, or connect(2) on the blocking socket). */
export function connectSocket(ring: Ring, fd: number, addr: Sockaddr, o: SyncOptions = {}): void {
  checkFd("connectSocket", fd);
  const detail = `fd ${fd} to ${formatAddress(addr)}`;
  if (useRing(ring, Q.IORING_OP_CONNECT, o.via, "connectSocket")) {
    runOne(ring, Q.IORING_OP_CONNECT, detail, o.timeoutMs ?? DEFAULT_TIMEOUT_MS, (w) => submitConnect(ring, fd, addr, onceHandler, w));
    return;
  }
  libcCheck("connect", c.connect(fd, addr.bytes, addr.length), detail);
}

/** Accept one connection on listening `fd` (ACCEPT, or accept4(2), which blocks this thread). */
export function acceptSocket(ring: Ring, fd: number, o: SyncOptions = {}): number {
  checkFd("acceptSocket", fd);
  if (useRing(ring, Q.IORING_OP_ACCEPT, o.via, "acceptSocket")) {
    return runOne(ring, Q.IORING_OP_ACCEPT, `listening fd ${fd}`, o.timeoutMs ?? DEFAULT_TIMEOUT_MS, (w) => submitAccept(ring, fd, onceHandler, w));
  }
  return libcCheck("accept4", c.accept4(fd, null, null, SOCK_CLOEXEC), `listening fd ${fd}`);
}

/** shutdown(fd, how) (SHUTDOWN, or shutdown(2)). */
export function shutdownSocket(ring: Ring, fd: number, how: number, o: SyncOptions = {}): void {
  checkFd("shutdownSocket", fd);
  if (useRing(ring, Q.IORING_OP_SHUTDOWN, o.via, "shutdownSocket")) {
    runOne(ring, Q.IORING_OP_SHUTDOWN, `fd ${fd}, how ${how}`, o.timeoutMs ?? DEFAULT_TIMEOUT_MS, (w) => submitShutdown(ring, fd, how, onceHandler, w));
    return;
  }
  libcCheck("shutdown", c.shutdown(fd, how), `fd ${fd}, how ${how}`);
}

/** close(fd) (CLOSE, or close(2)). */
export function closeSocket(ring: Ring, fd: number, o: SyncOptions = {}): void {
  checkFd("closeSocket", fd);
  if (useRing(ring, Q.IORING_OP_CLOSE, o.via, "closeSocket")) {
    runOne(ring, Q.IORING_OP_CLOSE, `fd ${fd}`, o.timeoutMs ?? DEFAULT_TIMEOUT_MS, (w) => submitClose(ring, fd, onceHandler, w));
    return;
  }
  libcCheck("close", c.close(fd), `fd ${fd}`);
}

function nameOf(call: "getsockname" | "getpeername", fd: number): DecodedAddress {
  checkFd(call, fd);
  const buf = new Uint8Array(SOCKADDR_RETURN_BYTES);
  const len = new Uint32Array([SOCKADDR_RETURN_BYTES]);
  const ret = call === "getsockname" ? c.getsockname(fd, buf, len) : c.getpeername(fd, buf, len);
  libcCheck(call, ret, `fd ${fd}`);
  return decodeSockaddr(new DataView(buf.buffer), 0);
}

/** The address `fd` is bound to (getsockname(2); the ring has no such opcode). */
export function localAddress(fd: number): DecodedAddress {
  return nameOf("getsockname", fd);
}

/** The address of `fd`'s peer (getpeername(2)). */
export function peerAddress(fd: number): DecodedAddress {
  return nameOf("getpeername", fd);
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

/** Closes `fd` when `fn` throws, then rethrows: a helper never leaks the socket it made. */
function closingOnError<R>(fd: number, fn: () => R): R {
  try {
    return fn();
  } catch (e) {
    c.close(fd);
    throw e;
  }
}

/** A listening TCP socket on `host:port` (port 0: the kernel picks; read it from `address`). */
export function tcpListen(ring: Ring, o: TcpListenOptions): BoundSocket {
  const addr = sockaddr(o);
  const fd = openSocket(ring, addr.family, SOCK_STREAM, 0, o);
  return closingOnError(fd, () => {
    if (o.reuseAddr !== false) setSocketOption(ring, fd, SOL_SOCKET, SO_REUSEADDR, 1, o);
    if (o.ipv6Only !== undefined && addr.family === AF_INET6) setSocketOption(ring, fd, IPPROTO_IPV6, IPV6_V6ONLY, o.ipv6Only ? 1 : 0, o);
    bindSocket(ring, fd, addr, o);
    listenSocket(ring, fd, o.backlog ?? 128, o);
    return { fd, address: localAddress(fd) };
  });
}

export interface TcpConnectOptions extends SyncOptions, SocketAddress {
  /** TCP_NODELAY. Default false. */
  noDelay?: boolean;
}

/** A TCP socket connected to `host:port`. */
export function tcpConnect(ring: Ring, o: TcpConnectOptions): number {
  const addr = sockaddr(o);
  const fd = openSocket(ring, addr.family, SOCK_STREAM, 0, o);
  return closingOnError(fd, () => {
    if (o.noDelay) setSocketOption(ring, fd, IPPROTO_TCP, TCP_NODELAY, 1, o);
    connectSocket(ring, fd, addr, o);
    return fd;
  });
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
  const fd = openSocket(ring, addr.family, SOCK_DGRAM, 0, o);
  return closingOnError(fd, () => {
    bindSocket(ring, fd, addr, o);
    if (o.connect) connectSocket(ring, fd, sockaddr(o.connect), o);
    return { fd, address: localAddress(fd) };
  });
}

/** Which socket opcodes this ring can use; the synchronous helpers fall back to libc for the rest. */
export function netSupport(ring: Ring): Record<"socket" | "bind" | "listen" | "connect" | "accept" | "acceptMultishot" | "shutdown" | "close" | "setsockopt", boolean> {
  return {
    socket: ring.supports(Q.IORING_OP_SOCKET),
    bind: ring.supports(Q.IORING_OP_BIND),
    listen: ring.supports(Q.IORING_OP_LISTEN),
    connect: ring.supports(Q.IORING_OP_CONNECT),
    accept: ring.supports(Q.IORING_OP_ACCEPT),
    acceptMultishot: ring.supports(Q.IORING_OP_ACCEPT) && kernelAtLeast("5.19", ring.capabilities.kernel),
    shutdown: ring.supports(Q.IORING_OP_SHUTDOWN),
    close: ring.supports(Q.IORING_OP_CLOSE),
    setsockopt: ringSetsockopt(ring),
  };
}

export { AF_INET, AF_INET6 };

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
    const n = runOne(ring, Q.IORING_OP_SEND, `fd ${fd}, ${part.length} bytes`, o.timeoutMs ?? DEFAULT_TIMEOUT_MS, (w) => {
      const [ud, slot] = reserve(ring, onceHandler as CompletionHandler, w, part);
      prepSend(ring.sq, slot, fd, address, part.length, MSG_WAITALL | MSG_NOSIGNAL);
      ring.setUserData(slot, ud);
      return ud;
    });
    done += n;
  }
  return done;
}

function checkBytes(where: string, buf: Uint8Array): void {
  if (!(buf instanceof Uint8Array) || buf.byteLength === 0) throw invalidArgument(where, "the buffer must be a non-empty Uint8Array (not detached)");
}

/** One IORING_OP_RECV into `buf`; returns the byte count (0: the peer closed). */
export function recvSome(ring: Ring, fd: number, buf: Uint8Array, o: SyncOptions = {}): number {
  checkFd("recvSome", fd);
  checkBytes("recvSome", buf);
  const address = addressOf(buf);
  return runOne(ring, Q.IORING_OP_RECV, `fd ${fd}, ${buf.length} bytes`, o.timeoutMs ?? DEFAULT_TIMEOUT_MS, (w) => {
    const [ud, slot] = reserve(ring, onceHandler as CompletionHandler, w, buf);
    prepRecv(ring.sq, slot, fd, address, buf.length, 0);
    ring.setUserData(slot, ud);
    return ud;
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
