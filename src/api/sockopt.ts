// Socket options of the async API, as one options shape for connect(), listen() (applied to each
// accepted socket) and the socket methods: TCP_NODELAY, SO_KEEPALIVE with its idle time,
// SO_SNDBUF and SO_RCVBUF. Each is a setsockopt(2) through libc when the socket is made or the
// method is called; a refused one throws a UringError naming the option.
import { c, errno } from "../../ffi/index.ts";
import { IPPROTO_TCP, SOL_SOCKET, SO_KEEPALIVE, SO_RCVBUF, SO_SNDBUF, TCP_KEEPIDLE, TCP_NODELAY } from "../abi/net.ts";
import { UringError, invalidArgument } from "../error.ts";

export interface SocketOptions {
  /** TCP_NODELAY: send small writes at once (no Nagle delay). Default true, as Bun does. */
  noDelay?: boolean;
  /** SO_KEEPALIVE: probe an idle connection. Default false (the kernel's default). */
  keepAlive?: boolean;
  /** With keepAlive: idle time before the first probe (TCP_KEEPIDLE, whole seconds, rounded
   * up). Default: the kernel's (net.ipv4.tcp_keepalive_time, 2 hours). */
  keepAliveInitialDelayMs?: number;
  /** SO_SNDBUF in bytes (the kernel doubles it and caps it at net.core.wmem_max). Default: the
   * kernel's autotuning, as every other socket on the machine gets. */
  sendBufferSize?: number;
  /** SO_RCVBUF in bytes (doubled, capped at net.core.rmem_max). Default: autotuning. */
  receiveBufferSize?: number;
}

/** SO_SNDBUF / SO_RCVBUF values setsockopt takes (an int; the kernel doubles it). */
const MAX_BUFFER_BYTES = 2 ** 30;
/** TCP_KEEPIDLE's limit (MAX_TCP_KEEPIDLE, include/net/tcp.h). */
const MAX_KEEPIDLE_SECONDS = 32767;

const intArg = new Int32Array(1);
const lenArg = new Uint32Array(1);

/** setsockopt(fd, level, name) of an int option; throws a UringError naming `what`. */
export function setIntOption(fd: number, level: number, name: number, value: number, what: string): void {
  intArg[0] = value;
  if (c.setsockopt(fd, level, name, intArg, 4) < 0) throw new UringError("setsockopt", errno(), `${what} on fd ${fd}`);
}

/** getsockopt(fd, level, name) of an int option. */
export function getIntOption(fd: number, level: number, name: number, what: string): number {
  lenArg[0] = 4;
  if (c.getsockopt(fd, level, name, intArg, lenArg) < 0) throw new UringError("getsockopt", errno(), `${what} on fd ${fd}`);
  return intArg[0]!;
}

function checkBool(where: string, name: string, v: unknown): void {
  if (v !== undefined && typeof v !== "boolean") throw invalidArgument(where, `${name} must be a boolean, got ${String(v)}`);
}

/** Checked buffer size in bytes. */
export function checkBufferSize(where: string, name: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > MAX_BUFFER_BYTES) throw invalidArgument(where, `${name} must be an integer 1..${MAX_BUFFER_BYTES} (bytes), got ${String(v)}`);
  return v;
}

/** Checked keepalive delay in whole seconds (rounded up from milliseconds), 0 for the default. */
export function keepIdleSeconds(where: string, ms: unknown): number {
  if (ms === undefined || ms === 0) return 0;
  if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0 || ms > MAX_KEEPIDLE_SECONDS * 1000) throw invalidArgument(where, `keepAliveInitialDelayMs must be 0..${MAX_KEEPIDLE_SECONDS * 1000}, got ${String(ms)}`);
  return Math.ceil(ms / 1000);
}

/** Check every field up front, so a bad option fails before a socket is made. */
export function checkSocketOptions(where: string, o: SocketOptions): void {
  checkBool(where, "noDelay", o.noDelay);
  checkBool(where, "keepAlive", o.keepAlive);
  keepIdleSeconds(where, o.keepAliveInitialDelayMs);
  if (o.sendBufferSize !== undefined) checkBufferSize(where, "sendBufferSize", o.sendBufferSize);
  if (o.receiveBufferSize !== undefined) checkBufferSize(where, "receiveBufferSize", o.receiveBufferSize);
}

/** Apply checked options to a TCP socket (noDelay defaults to on). */
export function applySocketOptions(fd: number, o: SocketOptions): void {
  if (o.noDelay !== false) setIntOption(fd, IPPROTO_TCP, TCP_NODELAY, 1, "TCP_NODELAY");
  if (o.keepAlive === true) setKeepAlive(fd, true, keepIdleSeconds("keepAlive", o.keepAliveInitialDelayMs));
  if (o.sendBufferSize !== undefined) setIntOption(fd, SOL_SOCKET, SO_SNDBUF, o.sendBufferSize, "SO_SNDBUF");
  if (o.receiveBufferSize !== undefined) setIntOption(fd, SOL_SOCKET, SO_RCVBUF, o.receiveBufferSize, "SO_RCVBUF");
}

export function setNoDelay(fd: number, on: boolean): void {
  setIntOption(fd, IPPROTO_TCP, TCP_NODELAY, on ? 1 : 0, "TCP_NODELAY");
}

export function setKeepAlive(fd: number, on: boolean, idleSeconds: number): void {
  setIntOption(fd, SOL_SOCKET, SO_KEEPALIVE, on ? 1 : 0, "SO_KEEPALIVE");
  if (on && idleSeconds > 0) setIntOption(fd, IPPROTO_TCP, TCP_KEEPIDLE, idleSeconds, "TCP_KEEPIDLE");
}

export function setBufferSize(fd: number, send: boolean, bytes: number): void {
  setIntOption(fd, SOL_SOCKET, send ? SO_SNDBUF : SO_RCVBUF, bytes, send ? "SO_SNDBUF" : "SO_RCVBUF");
}
