// The one way a socket is set up, for the async API and the synchronous helpers alike: create it,
// set its options, bind it, then make it listen or connect it. Each step has a ring form
// (IORING_OP_SOCKET 5.19, setsockopt as a socket URING_CMD 6.7, BIND and LISTEN 6.11, CONNECT
// 5.5) and the libc call it replaces. A step takes the ring form where this ring's kernel has it
// (an opcode probe; setsockopt's command is probed by its first use, see ringSetsockopt), unless
// the plan says "libc"; "ring" refuses the fallback with an error naming the kernel that has it.
//
// Steps run in order from completions: a ring step's CQE starts the next step, a libc step runs at
// once. So a set-up whose steps are all libc calls is done when start() returns, which is what
// the async API's listen() and udp() use, since they return the bound socket at once. connect()
// runs the ring forms and settles from the last CQE; the ring forms that do not block (SOCKET,
// setsockopt, BIND, LISTEN) complete inline at submit, and the loop driver dispatches inline
// completions and submits what their handlers queued in the same turn, so they cost one
// io_uring_enter each, as the libc calls cost one syscall. The synchronous helpers (src/sync.ts)
// drive the ring until the set-up is done.
//
// Ownership: a socket the set-up created is closed when a later step fails, so the caller gets an
// fd or an error, never both; an fd the caller passed in (SocketPlan.fd) stays the caller's.
import { c, errno } from "../../ffi/index.ts";
import * as Q from "../abi/sqe.ts";
import { ECANCELED, EOPNOTSUPP } from "../abi/errno.ts";
import { SOCK_CLOEXEC, SOCK_NONBLOCK } from "../abi/net.ts";
import type { Ring } from "../ring/ring.ts";
import { UringError, invalidArgument, unsupported, shown } from "../error.ts";
import { confirmFd, disownFd, fdLedger, ownSocket, pendingFd, unwatchCqeFds, watchCqeFds } from "../ring/reclaim.ts";
import {
  type DecodedAddress,
  type Sockaddr,
  SOCKADDR_RETURN_BYTES,
  decodeSockaddr,
  formatAddress,
} from "./sockaddr.ts";
import {
  checkFd,
  ringSetsockopt,
  setsockoptRefused,
  socketError,
  submitBind,
  submitConnect,
  submitListen,
  submitSetsockopt,
  submitSocket,
} from "./submit.ts";

/** Which form the steps take: the ring where the kernel has the opcode ("auto"), the ring or an
 * error naming the kernel that has it ("ring"), or the libc call ("libc"). */
export type NetPath = "auto" | "ring" | "libc";

/** One int socket option: setsockopt(fd, level, name, &value, 4). `label` names it in errors
 * ("TCP_NODELAY"). */
export interface IntOption {
  level: number;
  name: number;
  value: number;
  label: string;
}

/** What to set up. Steps run in this order: socket (unless `fd` is given), each option, bind,
 * listen, connect; absent ones are skipped. */
export interface SocketPlan {
  /** Continue the set-up of this fd (the caller's: never closed here) instead of making one. */
  fd?: number;
  /** socket(2) domain and type of a new socket (SOCK_CLOEXEC is always added). */
  family?: number;
  type?: number;
  /** socket(2) protocol. Default 0 (the domain's default for the type). */
  protocol?: number;
  options?: readonly IntOption[];
  bind?: Sockaddr;
  /** listen(2) backlog. */
  listen?: number;
  connect?: Sockaddr;
  /** How errors name the connect target. Default: its address. */
  connectLabel?: string;
  /** Default "auto". */
  via?: NetPath;
  /** The libc form of socket() adds SOCK_NONBLOCK too, as the ring form always does (a socket
   * driven by the ring should not block: see submitSocket). Default false: connect(2) and
   * accept4(2) of the synchronous helpers' libc path expect a blocking socket. */
  nonBlocking?: boolean;
  /** What the socket is for, in errors of its creation ("TCP listener on 127.0.0.1:8080"). */
  purpose?: string;
  /** The library will own the new socket (the async API): it goes into the fd ledger the moment
   * it exists, so a Worker terminated during the set-up leaves nothing open (src/ring/reclaim.ts).
   * Never for a socket handed to the caller. */
  record?: boolean;
}

/** A listen(2) backlog: an integer 0..2^31-1 (the kernel caps it at net.core.somaxconn). */
export function checkBacklog(where: string, backlog: number): number {
  if (!Number.isInteger(backlog) || backlog < 0 || backlog > 0x7fffffff)
    throw invalidArgument(where, `backlog must be an integer 0..2147483647, got ${shown(backlog)}`);
  return backlog;
}

const STEP_SOCKET = 0;
const STEP_OPTION = 1;
const STEP_BIND = 2;
const STEP_LISTEN = 3;
const STEP_CONNECT = 4;
const STEP_DONE = 5;

const STEP_OPCODES = [
  Q.IORING_OP_SOCKET,
  Q.IORING_OP_URING_CMD,
  Q.IORING_OP_BIND,
  Q.IORING_OP_LISTEN,
  Q.IORING_OP_CONNECT,
];
const STEP_CALLS = ["socket", "setsockopt", "bind", "listen", "connect"];

const NO_OPTIONS: readonly IntOption[] = [];

/** The int argument of a libc setsockopt (one per thread: the call copies it at once). */
const intArg = new Int32Array(1);

/** setsockopt(2) of one int option; throws the libc error naming the option. */
export function setOptionNow(fd: number, o: IntOption): void {
  intArg[0] = o.value;
  if (c.setsockopt(fd, o.level, o.name, intArg, 4) < 0)
    throw new UringError("setsockopt", errno(), `${o.label} on fd ${fd}`);
}

const optLen = new Uint32Array(1);

/** getsockopt(2) of one int option: its value, or minus the errno when the call fails. */
export function getOptionNow(fd: number, level: number, name: number): number {
  optLen[0] = 4;
  return c.getsockopt(fd, level, name, intArg, optLen) < 0 ? -errno() : intArg[0]!;
}

function onStepCqe(s: SocketSetup, res: number): void {
  s.stepDone(res);
}

/** One socket's set-up in progress. `onDone` runs once, when `done` turns true: then `error` is
 * null and `fd` the socket, or `error` says which step failed (and a socket the set-up made is
 * closed). onDone may run inside start() (libc steps) or inside a completion handler. */
export class SocketSetup {
  /** The socket (-1 until created). */
  fd: number;
  error: UringError | null = null;
  done = false;
  /** Steps finished so far: a waiter can bound each step's wait on its own. */
  steps = 0;
  /** user_data of the ring step in flight, or -1. */
  private inFlight = -1;
  /** The fd ledger's watch of a ring SOCKET step in flight (watchCqeFds), or -1. */
  private watch = -1;
  /** Kind of the step running now (STEP_*). */
  private kind = STEP_SOCKET;
  private option = 0;
  private readonly options: readonly IntOption[];
  private readonly owned: boolean;
  private readonly via: NetPath;
  private stopError: UringError | null = null;

  constructor(
    readonly ring: Ring,
    readonly plan: SocketPlan,
    private readonly onDone: ((s: SocketSetup) => void) | null = null,
  ) {
    this.owned = plan.fd === undefined;
    if (!this.owned) checkFd("socket set-up", plan.fd!);
    this.fd = plan.fd ?? -1;
    this.options = plan.options ?? NO_OPTIONS;
    this.via = plan.via ?? "auto";
    if (plan.listen !== undefined) checkBacklog("listen", plan.listen);
  }

  /** The opcode (or libc call) of the step running now, for a timeout's error. */
  get stepName(): string {
    const k = this.kind === STEP_DONE ? STEP_CONNECT : this.kind;
    return this.inFlight >= 0 ? `IORING_OP_${Q.opcodeName(STEP_OPCODES[k]!)}` : STEP_CALLS[k]!;
  }

  /** What the running step works on, for errors. */
  get stepDetail(): string {
    return this.detail(this.kind);
  }

  /** Run the steps until one waits for its CQE (or all are done). */
  start(): void {
    this.kind = this.owned ? STEP_SOCKET : STEP_OPTION;
    this.option = 0;
    this.advance();
  }

  /** Stop the set-up with `error`: the step in flight finishes (or is cancelled by the caller,
   * with the user_data this returns, -1 when none is in flight), no further step starts, and the
   * set-up ends with `error`. */
  stop(error: UringError): number {
    if (this.done) return -1;
    if (this.stopError === null) this.stopError = error;
    return this.inFlight;
  }

  /** @internal — the CQE of the ring step in flight. */
  stepDone(res: number): void {
    this.inFlight = -1;
    this.steps++;
    if (this.kind === STEP_SOCKET && res >= 0) this.made(res);
    // The CQE's socket is in the ledger now (or there was none): the watch has done its work.
    if (this.watch >= 0) {
      unwatchCqeFds(this.watch);
      this.watch = -1;
    }
    if (res < 0) {
      if (this.stopError !== null && res === -ECANCELED) return this.finish(this.stopError);
      if (this.kind === STEP_OPTION && res === -EOPNOTSUPP && this.via !== "ring") {
        // The kernel has no setsockopt command (see ringSetsockopt): this option and every later
        // one go through libc.
        setsockoptRefused(this.ring);
        return this.advance();
      }
      const e =
        this.kind === STEP_OPTION && res === -EOPNOTSUPP
          ? unsupported(
              "setsockopt",
              "setsockopt through IORING_OP_URING_CMD (SOCKET_URING_OP_SETSOCKOPT)",
              "6.7",
              this.ring.capabilities.kernel,
            )
          : socketError(STEP_OPCODES[this.kind]!, res, this.detail(this.kind));
      return this.finish(e);
    }
    this.nextStep();
    this.advance();
  }

  private nextStep(): void {
    const p = this.plan;
    switch (this.kind) {
      case STEP_SOCKET:
        this.kind = STEP_OPTION;
        this.option = 0;
        return;
      case STEP_OPTION:
        this.option++;
        return;
      case STEP_BIND:
        this.kind = p.listen !== undefined ? STEP_LISTEN : STEP_CONNECT;
        return;
      default:
        this.kind = this.kind === STEP_LISTEN ? STEP_CONNECT : STEP_DONE;
    }
  }

  /** Skip to the next step the plan has. */
  private settle(): void {
    const p = this.plan;
    if (this.kind === STEP_OPTION && this.option >= this.options.length) this.kind = STEP_BIND;
    if (this.kind === STEP_BIND && p.bind === undefined) this.kind = STEP_LISTEN;
    if (this.kind === STEP_LISTEN && p.listen === undefined) this.kind = STEP_CONNECT;
    if (this.kind === STEP_CONNECT && p.connect === undefined) this.kind = STEP_DONE;
  }

  private advance(): void {
    for (;;) {
      this.settle();
      if (this.stopError !== null) return this.finish(this.stopError);
      if (this.kind === STEP_DONE) return this.finish(null);
      try {
        if (this.ringStep()) return;
        this.libcStep();
      } catch (e) {
        return this.finish(e instanceof UringError ? e : new UringError(STEP_CALLS[this.kind]!, 0, String(e)));
      }
      this.steps++;
      this.nextStep();
    }
  }

  /** Whether the running step goes through the ring, by the plan and the kernel. */
  private useRing(): boolean {
    if (this.via === "libc") return false;
    const has = this.kind === STEP_OPTION ? ringSetsockopt(this.ring) : this.ring.supports(STEP_OPCODES[this.kind]!);
    if (has) return true;
    if (this.via === "ring") {
      if (this.kind === STEP_OPTION)
        throw unsupported(
          "setsockopt",
          "setsockopt through IORING_OP_URING_CMD (SOCKET_URING_OP_SETSOCKOPT)",
          "6.7",
          this.ring.capabilities.kernel,
        );
      this.ring.requireOp(STEP_OPCODES[this.kind]!, STEP_CALLS[this.kind]!);
    }
    return false;
  }

  /** Submit the running step's ring form; false when it takes the libc form. */
  private ringStep(): boolean {
    if (!this.useRing()) return false;
    const p = this.plan;
    const ring = this.ring;
    switch (this.kind) {
      case STEP_SOCKET:
        this.inFlight = submitSocket(ring, p.family!, p.type!, p.protocol ?? 0, onStepCqe, this);
        if (p.record === true) this.watch = watchCqeFds(ring.fd, this.inFlight);
        break;
      case STEP_OPTION: {
        const o = this.options[this.option]!;
        this.inFlight = submitSetsockopt(ring, this.fd, o.level, o.name, o.value, onStepCqe, this);
        break;
      }
      case STEP_BIND:
        this.inFlight = submitBind(ring, this.fd, p.bind!, onStepCqe, this);
        break;
      case STEP_LISTEN:
        this.inFlight = submitListen(ring, this.fd, p.listen!, onStepCqe, this);
        break;
      default:
        this.inFlight = submitConnect(ring, this.fd, p.connect!, onStepCqe, this);
    }
    return true;
  }

  /** Run the running step's libc form; throws its error. */
  private libcStep(): void {
    const p = this.plan;
    const fd = this.fd;
    let ret: number;
    switch (this.kind) {
      case STEP_SOCKET: {
        // Into the fd ledger the moment it exists: no function call between socket(2) and the
        // store (src/ring/reclaim.ts fdLedger).
        const at = p.record === true ? pendingFd("socket") : -1;
        ret = c.socket(
          p.family!,
          p.type! | SOCK_CLOEXEC | (p.nonBlocking === true ? SOCK_NONBLOCK : 0),
          p.protocol ?? 0,
        );
        if (at >= 0) fdLedger[at] = ret;
        if (at >= 0) confirmFd(at, ret);
        if (ret >= 0) this.fd = ret;
        break;
      }
      case STEP_OPTION:
        setOptionNow(fd, this.options[this.option]!);
        return;
      case STEP_BIND:
        ret = c.bind(fd, p.bind!.bytes, p.bind!.length);
        break;
      case STEP_LISTEN:
        ret = c.listen(fd, p.listen!);
        break;
      default:
        ret = c.connect(fd, p.connect!.bytes, p.connect!.length);
    }
    if (ret < 0) throw new UringError(STEP_CALLS[this.kind]!, errno(), this.detail(this.kind));
  }

  private detail(kind: number): string {
    const p = this.plan;
    switch (kind) {
      case STEP_SOCKET:
        return p.purpose ?? `domain ${p.family}, type ${p.type}`;
      case STEP_OPTION: {
        const o = this.options[this.option];
        return `${o === undefined ? "socket option" : o.label} on fd ${this.fd}`;
      }
      case STEP_BIND:
        return `fd ${this.fd} to ${formatAddress(p.bind!)}`;
      case STEP_LISTEN:
        return `fd ${this.fd}, backlog ${p.listen}`;
      default:
        return `fd ${this.fd} to ${p.connectLabel ?? (p.connect !== undefined ? formatAddress(p.connect) : "nothing")}`;
    }
  }

  /** The ring's SOCKET step made the socket. */
  private made(fd: number): void {
    this.fd = fd;
    if (this.plan.record === true) ownSocket(fd);
  }

  private finish(error: UringError | null): void {
    if (this.done) return;
    this.done = true;
    this.error = error;
    if (error !== null && this.owned && this.fd >= 0) {
      c.close(this.fd);
      if (this.plan.record === true) disownFd(this.fd);
      this.fd = -1;
    }
    this.onDone?.(this);
  }
}

/** Run a set-up whose every step is a libc call (via "libc") to the end now; returns the fd or
 * throws the failed step's error. */
export function setUpNow(ring: Ring, plan: SocketPlan): number {
  const s = new SocketSetup(ring, { ...plan, via: "libc" });
  s.start();
  if (s.error !== null) throw s.error;
  return s.fd;
}

function nameOf(call: "getsockname" | "getpeername", fd: number): DecodedAddress {
  checkFd(call, fd);
  const buf = new Uint8Array(SOCKADDR_RETURN_BYTES);
  const len = new Uint32Array([SOCKADDR_RETURN_BYTES]);
  const ret = call === "getsockname" ? c.getsockname(fd, buf, len) : c.getpeername(fd, buf, len);
  if (ret < 0) throw new UringError(call, errno(), `fd ${fd}`);
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
