// Socket operations in callback form: SOCKET (5.19), BIND and LISTEN (6.11), CONNECT and ACCEPT
// (5.5, multishot accept 5.19), SHUTDOWN (5.11), CLOSE (5.6) and setsockopt as a socket URING_CMD
// (6.7). Each `submit*` queues one SQE and calls a CompletionHandler with the raw CQE: what an
// event loop builds on, with no allocation beyond the op-table entry. res < 0 is -errno
// (socketError(op, res, detail) makes the UringError). The libc fallbacks and the order of a
// socket's set-up live in setup.ts; the synchronous helpers that wait for them in src/sync.ts.
import * as Q from "../abi/sqe.ts";
import { SOCK_CLOEXEC, SOCK_NONBLOCK } from "../abi/net.ts";
import {
  prepAccept,
  prepBind,
  prepClose,
  prepConnect,
  prepListen,
  prepMultishotAccept,
  prepSetsockopt,
  prepShutdown,
  prepSocket,
} from "../ops/prep.ts";
import type { Ring } from "../ring/ring.ts";
import type { CompletionHandler } from "../ring/optable.ts";
import { kernelAtLeast } from "../ring/kernel.ts";
import { UringError, invalidArgument, unsupported, shown } from "../error.ts";
import type { Sockaddr } from "./sockaddr.ts";

/** The error for a failed socket operation: the opcode (or libc call), the errno name, the
 * address or fd involved, and the usual cause. `res` is the CQE result (-errno). */
export function socketError(op: number, res: number, detail?: string): UringError {
  return new UringError(`IORING_OP_${Q.opcodeName(op)}`, -res, detail);
}

/** A file descriptor argument: an integer 0..2^31-1. */
export function checkFd(where: string, fd: number): void {
  if (!Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff)
    throw invalidArgument(where, `fd must be a non-negative integer, got ${shown(fd)}`);
}

// ---- callback form: one SQE each, the handler sees every CQE of it ----

/** IORING_OP_SOCKET (5.19): the CQE's res is the new fd. SOCK_CLOEXEC | SOCK_NONBLOCK are added
 * to `type`: the ring polls a non-blocking socket when it would block, where a blocking one can
 * leave an io-wq worker asleep inside sendmsg (io_wq_submit_work issues without NONBLOCK). */
export function submitSocket<T>(
  ring: Ring,
  domain: number,
  type: number,
  protocol: number,
  handler: CompletionHandler<T>,
  data: T,
): number {
  ring.requireOp(Q.IORING_OP_SOCKET, "submitSocket");
  const slot = ring.begin(handler, data);
  const ud = ring.userDataOf(slot);
  prepSocket(ring.sq, slot, domain, type | SOCK_CLOEXEC | SOCK_NONBLOCK, protocol, 0);
  return ud;
}

/** IORING_OP_BIND (6.11). The address is copied into the op's scratch block: `addr` may be reused
 * at once. */
export function submitBind<T>(ring: Ring, fd: number, addr: Sockaddr, handler: CompletionHandler<T>, data: T): number {
  checkFd("submitBind", fd);
  ring.requireOp(Q.IORING_OP_BIND, "submitBind");
  return submitWithAddress(ring, fd, addr, prepBind, handler, data);
}

/** One SQE that points at a sockaddr (BIND, CONNECT): the address goes into the op's scratch
 * block, so the caller's Sockaddr may be reused at once. */
function submitWithAddress<T>(
  ring: Ring,
  fd: number,
  addr: Sockaddr,
  prep: typeof prepBind,
  handler: CompletionHandler<T>,
  data: T,
): number {
  const slot = ring.begin(handler, data);
  const ud = ring.userDataOf(slot);
  ring.ops.scratch.set(addr.bytes, ring.ops.scratchOffset(ud));
  prep(ring.sq, slot, fd, ring.ops.scratchAddressOf(ud), addr.length);
  return ud;
}

/** IORING_OP_LISTEN (6.11). */
export function submitListen<T>(
  ring: Ring,
  fd: number,
  backlog: number,
  handler: CompletionHandler<T>,
  data: T,
): number {
  return submitFdInt(ring, Q.IORING_OP_LISTEN, "submitListen", fd, backlog, prepListen, handler, data);
}

/** One SQE of an opcode that takes an fd and an int (LISTEN's backlog, SHUTDOWN's how), once the
 * fd is checked and the kernel is known to have the opcode. */
function submitFdInt<T>(
  ring: Ring,
  op: number,
  where: string,
  fd: number,
  n: number,
  prep: typeof prepListen,
  handler: CompletionHandler<T>,
  data: T,
): number {
  checkFd(where, fd);
  ring.requireOp(op, where);
  const slot = ring.begin(handler, data);
  const ud = ring.userDataOf(slot);
  prep(ring.sq, slot, fd, n);
  return ud;
}

/** IORING_OP_CONNECT (5.5). The address is copied into the op's scratch block. res 0 = connected. */
export function submitConnect<T>(
  ring: Ring,
  fd: number,
  addr: Sockaddr,
  handler: CompletionHandler<T>,
  data: T,
): number {
  checkFd("submitConnect", fd);
  return submitWithAddress(ring, fd, addr, prepConnect, handler, data);
}

/** IORING_OP_ACCEPT (5.5): res is the accepted fd (SOCK_CLOEXEC | SOCK_NONBLOCK, see submitSocket). With `multishot` (5.19) one
 * SQE yields a CQE per connection, each with IORING_CQE_F_MORE while the accept stays armed; a
 * CQE without F_MORE ends it (re-arm then). The peer's address is not collected: read it with
 * `peerAddress(fd)`. */
export function submitAccept<T>(
  ring: Ring,
  fd: number,
  handler: CompletionHandler<T>,
  data: T,
  multishot = false,
): number {
  checkFd("submitAccept", fd);
  const slot = ring.begin(handler, data);
  const ud = ring.userDataOf(slot);
  if (multishot) prepMultishotAccept(ring.sq, slot, fd, 0, 0, SOCK_CLOEXEC | SOCK_NONBLOCK);
  else prepAccept(ring.sq, slot, fd, 0, 0, SOCK_CLOEXEC | SOCK_NONBLOCK);
  return ud;
}

/** IORING_OP_SHUTDOWN (5.11): `how` is SHUT_RD, SHUT_WR or SHUT_RDWR. */
export function submitShutdown<T>(ring: Ring, fd: number, how: number, handler: CompletionHandler<T>, data: T): number {
  return submitFdInt(ring, Q.IORING_OP_SHUTDOWN, "submitShutdown", fd, how, prepShutdown, handler, data);
}

/** IORING_OP_CLOSE (5.6). */
export function submitClose<T>(ring: Ring, fd: number, handler: CompletionHandler<T>, data: T): number {
  checkFd("submitClose", fd);
  const slot = ring.begin(handler, data);
  const ud = ring.userDataOf(slot);
  prepClose(ring.sq, slot, fd);
  return ud;
}

/** Rings whose kernel answered a SOCKET_URING_OP_SETSOCKOPT with EOPNOTSUPP. */
const noRingSetsockopt = new WeakSet<Ring>();

/** Whether setsockopt may go through the ring: IORING_OP_URING_CMD is there (opcode probe) and
 * the kernel has not refused SOCKET_URING_OP_SETSOCKOPT on this ring. An opcode probe cannot
 * tell the command apart (URING_CMD is older than it, 5.19 against 6.7), so the first use is the
 * probe: a kernel without it answers EOPNOTSUPP (io_uring_cmd_sock's default case, or no
 * uring_cmd on sockets at all), the caller repeats that one call through libc and reports it
 * with setsockoptRefused, and the ring is not asked again. */
export function ringSetsockopt(ring: Ring): boolean {
  return ring.supports(Q.IORING_OP_URING_CMD) && !noRingSetsockopt.has(ring);
}

/** The kernel answered EOPNOTSUPP to a SOCKET_URING_OP_SETSOCKOPT on `ring` (see ringSetsockopt). */
export function setsockoptRefused(ring: Ring): void {
  noRingSetsockopt.add(ring);
}

/** setsockopt(fd, level, optname, &value, 4) as SOCKET_URING_OP_SETSOCKOPT (6.7); the int value
 * lives in the op's scratch block. */
export function submitSetsockopt<T>(
  ring: Ring,
  fd: number,
  level: number,
  optname: number,
  value: number,
  handler: CompletionHandler<T>,
  data: T,
): number {
  checkFd("submitSetsockopt", fd);
  if (!ringSetsockopt(ring))
    throw unsupported(
      "submitSetsockopt",
      "setsockopt through IORING_OP_URING_CMD (SOCKET_URING_OP_SETSOCKOPT)",
      "6.7",
      ring.capabilities.kernel,
    );
  const slot = ring.begin(handler, data);
  const ud = ring.userDataOf(slot);
  ring.ops.scratchView.setInt32(ring.ops.scratchOffset(ud), value, true);
  prepSetsockopt(ring.sq, slot, fd, level, optname, ring.ops.scratchAddressOf(ud), 4);
  return ud;
}

/** Which socket opcodes this ring can use; the synchronous helpers fall back to libc for the rest. */
export function netSupport(
  ring: Ring,
): Record<
  "socket" | "bind" | "listen" | "connect" | "accept" | "acceptMultishot" | "shutdown" | "close" | "setsockopt",
  boolean
> {
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
