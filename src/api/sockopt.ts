// Socket options of the async API, as one options shape for connect(), listen() (applied to each
// accepted socket) and the socket methods: TCP_NODELAY, SO_KEEPALIVE with its idle time,
// SO_SNDBUF and SO_RCVBUF. Checked up front; a new socket gets them as steps of its set-up
// (optionSteps, run by src/net/setup.ts: through the ring where the kernel has setsockopt as a
// URING_CMD), an accepted one and a method call get them at once (setOptionNow, setsockopt(2)). A
// refused one throws a UringError naming the option.
import { IPPROTO_TCP, SOL_SOCKET, SO_KEEPALIVE, SO_RCVBUF, SO_SNDBUF, TCP_KEEPIDLE, TCP_NODELAY } from "../abi/net.ts";
import { UringError, invalidArgument, shown } from "../error.ts";
import { type IntOption, getOptionNow, setOptionNow } from "../net/setup.ts";

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

/** getsockopt(fd, level, name) of an int option. */
export function getIntOption(fd: number, level: number, name: number, what: string): number {
  const v = getOptionNow(fd, level, name);
  if (v < 0) throw new UringError("getsockopt", -v, `${what} on fd ${fd}`);
  return v;
}

function checkBool(where: string, name: string, v: unknown): void {
  if (v !== undefined && typeof v !== "boolean")
    throw invalidArgument(where, `${name} must be a boolean, got ${shown(v)}`);
}

/** Checked buffer size in bytes. */
export function checkBufferSize(where: string, name: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > MAX_BUFFER_BYTES)
    throw invalidArgument(where, `${name} must be an integer 1..${MAX_BUFFER_BYTES} (bytes), got ${shown(v)}`);
  return v;
}

/** Checked keepalive delay in whole seconds (rounded up from milliseconds), 0 for the default. */
export function keepIdleSeconds(where: string, ms: unknown): number {
  if (ms === undefined || ms === 0) return 0;
  if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0 || ms > MAX_KEEPIDLE_SECONDS * 1000)
    throw invalidArgument(where, `keepAliveInitialDelayMs must be 0..${MAX_KEEPIDLE_SECONDS * 1000}, got ${shown(ms)}`);
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

function option(level: number, name: number, value: number, label: string): IntOption {
  return { level, name, value, label };
}

/** The setsockopt steps of checked options for a TCP socket (noDelay defaults to on). */
export function optionSteps(o: SocketOptions): IntOption[] {
  const steps: IntOption[] = [];
  if (o.noDelay !== false) steps.push(option(IPPROTO_TCP, TCP_NODELAY, 1, "TCP_NODELAY"));
  if (o.keepAlive === true)
    steps.push(...keepAliveSteps(true, keepIdleSeconds("keepAlive", o.keepAliveInitialDelayMs)));
  if (o.sendBufferSize !== undefined) steps.push(bufferSizeStep(true, o.sendBufferSize));
  if (o.receiveBufferSize !== undefined) steps.push(bufferSizeStep(false, o.receiveBufferSize));
  return steps;
}

function keepAliveSteps(on: boolean, idleSeconds: number): IntOption[] {
  const steps = [option(SOL_SOCKET, SO_KEEPALIVE, on ? 1 : 0, "SO_KEEPALIVE")];
  if (on && idleSeconds > 0) steps.push(option(IPPROTO_TCP, TCP_KEEPIDLE, idleSeconds, "TCP_KEEPIDLE"));
  return steps;
}

/** SO_SNDBUF (`send`) or SO_RCVBUF. */
export function bufferSizeStep(send: boolean, bytes: number): IntOption {
  return send ? option(SOL_SOCKET, SO_SNDBUF, bytes, "SO_SNDBUF") : option(SOL_SOCKET, SO_RCVBUF, bytes, "SO_RCVBUF");
}

export function setNoDelay(fd: number, on: boolean): void {
  setOptionNow(fd, option(IPPROTO_TCP, TCP_NODELAY, on ? 1 : 0, "TCP_NODELAY"));
}

export function setKeepAlive(fd: number, on: boolean, idleSeconds: number): void {
  for (const step of keepAliveSteps(on, idleSeconds)) setOptionNow(fd, step);
}

export function setBufferSize(fd: number, send: boolean, bytes: number): void {
  setOptionNow(fd, bufferSizeStep(send, bytes));
}
