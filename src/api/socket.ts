// Sockets of the async API. TCP sends go through the zero-copy sender of src/zc (ZcSender, mode
// "adaptive" by default): it links the sends of one chain with IOSQE_IO_LINK and MSG_WAITALL so
// bytes leave in order, uses SEND_ZC with REPORT_USAGE from its threshold up, and turns to plain
// SEND while notifications say the kernel copies (loopback, virtual devices). The socket corks
// the sender during a turn and uncorks it just before the turn's submit, so every send of a turn
// goes out as one chain in one io_uring_enter. UDP sends (each may name its own destination) are
// prepared here directly, SEND_ZC or SEND by the same size rule, with the destination in the
// op's scratch block. Backpressure: at most `maxInflightSends` sends hold buffers at once; later
// ones wait in the socket's queue, and their `sent` settles when they went out. A send's
// AbortSignal takes it out of that queue, or cancels a UDP send in the kernel
// (IORING_OP_ASYNC_CANCEL); a TCP send handed to the sender is never cut (see SendOptions).
import { addressOf, c, errno } from "../../ffi/index.ts";
import * as Q from "../abi/sqe.ts";
import { ECANCELED, EOPNOTSUPP, ERRNO } from "../abi/errno.ts";
import { MSG_NOSIGNAL, MSG_WAITALL, SHUT_WR, SOL_SOCKET, SO_RCVBUF, SO_SNDBUF } from "../abi/net.ts";
import { checkBufferSize, getIntOption, keepIdleSeconds, setBufferSize, setKeepAlive, setNoDelay } from "./sockopt.ts";
import { UringError, closedError, invalidArgument, unsupported } from "../error.ts";
import { kernelAtLeast } from "../ring/kernel.ts";
import { prepSend, prepSendSetAddr, prepSendZc } from "../ops/prep.ts";
import type { LoopDriver, PreSubmit } from "../loop/driver.ts";
import { type DecodedAddress, type SocketAddress, type Sockaddr, sockaddr } from "../net/sockaddr.ts";
import { localAddress, peerAddress } from "../net/setup.ts";
import { ZcSender, type ZcMode, type ZcStats, type ZcUsage } from "../zc/sender.ts";
import { SendOp, type SendOptions, type SendOwner, onSendCqe } from "./send.ts";
import { RECVFROM_HEADER_BYTES, RecvFromStream, RecvStream, type RecvHost, type RecvStreamBase, type RecvStreamOptions, type RecvSocket, abortError } from "./recv.ts";
import { ZcrxStream, type ZcrxStreamHost, type ZcrxRecvOptions } from "./zcrx.ts";
import type { ZcrxReceiver } from "../zcrx/receiver.ts";

/** What a socket needs from the ring that owns it. */
export interface SocketHost extends RecvHost, ZcrxStreamHost {
  /** The ZCRX receiver of this ring (registerZcrx), or a UringError saying it has none. */
  zcrxReceiver(): ZcrxReceiver;
  readonly loop: LoopDriver;
  /** Sends from this many bytes up try SEND_ZC. */
  readonly zcThresholdBytes: number;
  readonly maxInflightSends: number;
  /** SEND_ZC is available (opcode probe) and allowed by the options. */
  readonly sendZc: boolean;
  /** ioprio flags of every SEND_ZC (REPORT_USAGE where the kernel has it, 6.2). */
  readonly zcFlags: number;
  /** ZcSender mode of TCP sockets. */
  readonly zcMode: ZcMode;
  socketClosed(socket: AsyncSocket): void;
}

/** Per-socket send counters. */
export interface SendStats {
  /** Notifications that reported true zero-copy. */
  zeroCopy: number;
  /** Notifications that reported a copy (IORING_NOTIF_USAGE_ZC_COPIED). */
  copied: number;
  /** Sends that went out through plain SEND. */
  plain: number;
  /** Times the socket switched from SEND_ZC to SEND because copies dominated. */
  fallbacks: number;
}

/** Notifications per decision window of the adaptive SEND_ZC / SEND choice. */
const ZC_WINDOW = 32;
/** Plain sends before zero-copy is probed again after a fallback. */
const ZC_PROBE_AFTER = 1024;

const encoder = new TextEncoder();
const EIO = ERRNO.EIO!;
const EINVAL = ERRNO.EINVAL!;

export abstract class AsyncSocket implements SendOwner, RecvSocket, PreSubmit, AsyncDisposable {
  /** The socket's file descriptor (closed by close()). */
  readonly fd: number;
  readonly sendStats: SendStats = { zeroCopy: 0, copied: 0, plain: 0, fallbacks: 0 };
  /** @internal */ protected readonly host: SocketHost;
  private readonly stream: boolean;
  private readonly msgFlags: number;
  private queue: SendOp[] = [];
  private qHead = 0;
  /** Send SQEs (UDP) whose last CQE is still due (they hold buffers). */
  private holding = 0;
  private scheduled = false;
  /** A retry of a stalled flush (op table full) is queued with setImmediate. */
  private retryQueued = false;
  private readonly retryTask = (): void => {
    this.retryQueued = false;
    if (this.zc === null || this.fdClosed || this.host.ring.isClosed || this.scheduled) return;
    this.scheduled = true;
    this.host.loop.beforeSubmit(this);
  };
  /** Ring operations of this socket in flight (receive, sends, cancels). */
  private ops = 0;
  /** @internal — the receive stream (recv or recvFrom): one at a time. */
  protected recvStream: RecvStreamBase<any> | null = null;
  private zcrxStream: ZcrxStream | null = null;
  /** UDP: SEND_ZC for large datagrams while notifications do not report copies. */
  private udpZc: boolean;
  private zcUnsupported = false;
  private zcWinZc = 0;
  private zcWinCopied = 0;
  private zcProbe = 0;
  private closing = false;
  private fdClosed = false;
  private closePromise: Promise<void> | null = null;
  private closeResolve: (() => void) | null = null;
  private firstError: UringError | null = null;
  private closedPromise: Promise<UringError | null> | null = null;
  private closedResolve: ((e: UringError | null) => void) | null = null;
  private readyWaiters: (() => void)[] = [];
  private idleWaiters: (() => void)[] = [];
  /** The zero-copy sender of a TCP socket (null for UDP). */
  private readonly zc: ZcSender | null;
  private corked = false;

  /** @internal */
  constructor(host: SocketHost, fd: number, stream: boolean) {
    this.host = host;
    this.fd = fd;
    this.stream = stream;
    this.msgFlags = stream ? MSG_WAITALL | MSG_NOSIGNAL : MSG_NOSIGNAL;
    this.udpZc = host.sendZc;
    if (stream) {
      const zc = new ZcSender(host.ring, fd, {
        mode: host.sendZc ? host.zcMode : "copy",
        threshold: host.zcThresholdBytes,
        capacity: host.maxInflightSends,
        maxChain: host.maxInflightSends,
        reportUsage: host.zcFlags !== 0,
        stream: true,
      });
      zc.onSent = (op: SendOp, res: number) => this.zcSent(op, res);
      zc.onReleased = (op: SendOp, usage: ZcUsage) => this.zcReleased(op, usage);
      this.zc = zc;
    } else {
      this.zc = null;
    }
  }

  /** The zero-copy sender's counters (TCP): decision and reason, SEND_ZC / SEND counts, and
   * what the notifications reported. */
  get zcStats(): ZcStats | null {
    return this.zc === null ? null : this.zc.stats;
  }

  /** The first error any operation of this socket met (a send nobody awaited included): the
   * kernel's errno (ECONNRESET, EPIPE...), or null. Aborts and cancels by this side do not count. */
  get error(): UringError | null {
    return this.firstError;
  }

  /** Resolves once the socket's fd is closed (by close(), or with its ring), with the first error
   * it met or null. It never rejects, so it can be left unobserved; await it to learn how a
   * connection ended. */
  get closed(): Promise<UringError | null> {
    if (this.closedPromise === null) {
      if (this.fdClosed) this.closedPromise = Promise.resolve(this.firstError);
      else this.closedPromise = new Promise<UringError | null>((resolve) => (this.closedResolve = resolve));
    }
    return this.closedPromise;
  }

  /** @internal */
  noteError(error: UringError): void {
    if (this.firstError === null && error.errno !== ECANCELED && error.name !== "TimeoutError") this.firstError = error;
  }

  /** @internal */
  sendError(error: UringError): UringError {
    // A send cancelled because one before it in its link chain failed carries that failure.
    if (error.errno === ECANCELED && error.cause === undefined && this.firstError !== null) return this.firstError;
    this.noteError(error);
    return error;
  }

  /** Whether close() was called (or the ring closed). */
  get isClosed(): boolean {
    return this.closing;
  }

  /** Sends queued or holding a buffer. */
  get pendingSends(): number {
    const inZc = this.zc === null ? 0 : this.zc.inflight;
    return this.queue.length - this.qHead + this.holding + inZc;
  }

  /** Operations of this socket in flight in the ring. */
  get inflight(): number {
    return this.ops;
  }

  /** SO_SNDBUF as the kernel reports it (twice what was set: the kernel's bookkeeping share). */
  get sendBufferSize(): number {
    this.liveFd("sendBufferSize");
    return getIntOption(this.fd, SOL_SOCKET, SO_SNDBUF, "SO_SNDBUF");
  }

  /** SO_RCVBUF as the kernel reports it. */
  get receiveBufferSize(): number {
    this.liveFd("receiveBufferSize");
    return getIntOption(this.fd, SOL_SOCKET, SO_RCVBUF, "SO_RCVBUF");
  }

  /** Set SO_SNDBUF (bytes; the kernel doubles it and caps it at net.core.wmem_max). */
  setSendBufferSize(bytes: number): void {
    this.liveFd("setSendBufferSize");
    setBufferSize(this.fd, true, checkBufferSize("setSendBufferSize", "bytes", bytes));
  }

  /** Set SO_RCVBUF (bytes; doubled, capped at net.core.rmem_max). */
  setReceiveBufferSize(bytes: number): void {
    this.liveFd("setReceiveBufferSize");
    setBufferSize(this.fd, false, checkBufferSize("setReceiveBufferSize", "bytes", bytes));
  }

  /** @internal — an option call needs the fd still open (its number may belong to another file
   * after close). */
  protected liveFd(where: string): void {
    if (this.fdClosed) throw closedError(where, "socket");
  }

  /** The address this socket is bound to (getsockname). */
  get localAddress(): DecodedAddress {
    this.liveFd("localAddress");
    return localAddress(this.fd);
  }

  /** Queue `data` for sending. Returns at once; await the result (or `.sent`) for the byte count
   * and `.released` before modifying or reusing `data` (zero-copy sends read it until then).
   * A string is encoded as UTF-8 first. `options.signal` aborts the send: see SendOptions for
   * what an abort does at each stage (queued, in the kernel, TCP vs UDP). */
  send(data: Uint8Array | string, options?: SendOptions): SendOp {
    return this.enqueue(data, null, options);
  }

  /** @internal */
  protected enqueue(data: Uint8Array | string, to: Sockaddr | null, options: SendOptions | undefined): SendOp {
    const bytes = typeof data === "string" ? encoder.encode(data) : data;
    if (!(bytes instanceof Uint8Array)) throw invalidArgument("send", "data must be a Uint8Array or a string");
    if ((bytes.buffer as ArrayBuffer).detached === true) throw invalidArgument("send", "data's ArrayBuffer is detached (transferred): there is nothing left to send");
    const signal = options?.signal;
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidArgument("send", "options.signal must be an AbortSignal");
    const op = new SendOp(this, bytes);
    // A received chunk being sent (the echo) keeps its receive buffer until this send releases it.
    op.chunkHold = this.host.holdChunk(bytes);
    op.to = to;
    if (signal?.aborted) {
      // Nothing is submitted: the op settles at once (fail releases the buffer too).
      op.fail(abortError(signal, "IORING_OP_SEND"));
      return op;
    }
    if (this.closing) {
      op.fail(closedError(this.stream ? "TcpSocket.send" : "UdpSocket.send", "socket"));
      return op;
    }
    if (this.zc !== null) {
      if (bytes.byteLength === 0) op.resolveSent();
      else if (this.qHead === this.queue.length && this.zc.available > 0) this.zcSubmit(op);
      else {
        // Only a send waiting in the queue can still be aborted on a stream (see SendOptions).
        if (signal !== undefined) op.watch(signal);
        this.queue.push(op);
      }
      return op;
    }
    if (signal !== undefined) op.watch(signal);
    this.queue.push(op);
    if (!this.scheduled) {
      this.scheduled = true;
      this.host.loop.beforeSubmit(this);
    }
    return op;
  }

  /** Resolves when fewer than `maxInflightSends` sends are queued or in flight: await it in a
   * producer loop to bound the memory held by unsent data. */
  ready(): Promise<void> {
    if (this.pendingSends < this.host.maxInflightSends || this.closing) return Promise.resolve();
    return new Promise<void>((resolve) => this.readyWaiters.push(resolve));
  }

  /** Resolves when no send is queued or holding a buffer (every send released). */
  drain(): Promise<void> {
    if (this.pendingSends === 0 || this.fdClosed) return Promise.resolve();
    return new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  /** Half-close: once every queued send is through, shutdown(SHUT_WR) — the peer reads EOF while
   * this side can still receive. */
  async end(): Promise<void> {
    await this.drain();
    if (this.fdClosed) return;
    if (c.shutdown(this.fd, SHUT_WR) < 0) throw new UringError("shutdown", errno(), `fd ${this.fd}`);
  }

  /** Receive as an async iterable of chunks (TCP: until the peer closes; UDP: one datagram per
   * chunk). A chunk is a view of a provided buffer, valid until the next iteration step: copy it
   * (`chunk.slice()`) to keep it, and await `.released` of a send of it before stepping on. One
   * receive stream per socket at a time. */
  recv(options: RecvStreamOptions = {}): RecvStream {
    if (this.closing) throw closedError("recv", "socket");
    const paused = this.resumable(RecvStream, "recv", options);
    if (paused !== null) return paused;
    const s = new RecvStream(this.host, this, !this.stream, options);
    this.recvStream = s;
    return s;
  }

  /** The socket's receive stream if a consumer left it (paused, with whatever it received kept):
   * the next reader takes it up. Throws while another reader is still on it. */
  protected resumable<S extends RecvStreamBase<any>>(kind: abstract new (...a: any[]) => S, where: string, options: RecvStreamOptions): S | null {
    const cur = this.recvStream;
    if (cur === null) return null;
    if (!cur.isPaused) throw invalidArgument(where, "this socket already has a receive stream; finish it (break or return()) first");
    if (!(cur instanceof kind)) throw invalidArgument(where, `a ${where === "recv" ? "recvFrom()" : "recv()"} stream of this socket was left with data still queued: read it with ${where === "recv" ? "recvFrom()" : "recv()"} again, or close the socket`);
    cur.resume(options);
    return cur;
  }

  /** Zero-copy receive (RECV_ZC) through the ring's registered ZCRX queue: an async iterable of
   * chunks read in place from the area; release each one (chunk.release()). TCP only; needs
   * AsyncRing.registerZcrx first. */
  recvZc(options: ZcrxRecvOptions = {}): ZcrxStream {
    if (this.closing) throw closedError("recvZc", "socket");
    if (!this.stream) throw invalidArgument("recvZc", "RECV_ZC receives TCP streams only");
    if (this.zcrxStream !== null && this.zcrxStream.armed) throw invalidArgument("recvZc", "this socket already has a zero-copy receive stream");
    const s = new ZcrxStream(this.host.zcrxReceiver(), this.fd, this.host, options);
    if (s.armed) {
      this.ops++;
      s.onFinish = () => {
        this.ops--;
        if (this.zcrxStream === s) this.zcrxStream = null;
        this.checkClosed();
      };
      this.zcrxStream = s;
    }
    return s;
  }

  /** Close: stop the receive stream (ASYNC_CANCEL), let queued sends finish, wait until no
   * operation of this socket is in flight and every buffer is released, then close the fd. */
  close(): Promise<void> {
    if (this.closePromise !== null) return this.closePromise;
    this.closing = true;
    this.closePromise = new Promise<void>((resolve) => (this.closeResolve = resolve));
    this.recvStream?.stop();
    if (this.zcrxStream !== null) void this.zcrxStream.return();
    this.wakeReady();
    this.checkClosed();
    return this.closePromise;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** @internal — the ring is going away: fail what never reached the kernel; the ring's own
   * close cancels the rest and runs the handlers. */
  abandon(): void {
    this.closing = true;
    this.recvStream?.stop();
    const err = closedError("send", "ring");
    while (this.qHead < this.queue.length) this.queue[this.qHead++]!.fail(err);
    this.queue = [];
    this.qHead = 0;
    // Sends the sender holds corked get their SQEs now; the ring's close cancels or completes
    // them, and their callbacks run.
    if (this.zc !== null && this.corked && !this.host.ring.isClosed) {
      this.corked = false;
      this.zc.uncork();
    }
    // Sends still waiting for op-table room never reach the kernel now: fail and release them.
    if (this.zc !== null && this.zc.stalled) this.zc.abandonQueued();
    this.wakeReady();
  }

  /** @internal — closes the fd once nothing is in flight (after the ring closed). */
  closeFd(): void {
    if (this.fdClosed) return;
    this.fdClosed = true;
    c.close(this.fd);
    this.host.socketClosed(this);
    this.wakeReady();
    this.closeResolve?.();
    this.closeResolve = null;
    this.closedResolve?.(this.firstError);
    this.closedResolve = null;
  }

  // ---- PreSubmit ----

  /** @internal */
  prepareSubmit(): void {
    this.scheduled = false;
    if (this.zc !== null) {
      this.corked = false;
      if (!this.host.ring.isClosed) {
        this.zc.uncork();
        // The ring's op table was full and nothing of this socket is in flight to flush the rest
        // when it completes: try again on a later turn of the event loop (not in a microtask,
        // since entries free up only as other completions are handled).
        if (this.zc.stalled && !this.retryQueued) {
          this.retryQueued = true;
          setImmediate(this.retryTask);
        }
      }
      return;
    }
    this.pump();
  }

  // ---- TCP: through ZcSender ----

  /** Hand one send to the sender, corked until the turn's submit. */
  private zcSubmit(op: SendOp): void {
    const zc = this.zc!;
    if (op.data.byteLength !== op.length) {
      // Waited in the queue while its ArrayBuffer was transferred or shrunk.
      op.unwatch();
      op.fail(new UringError("IORING_OP_SEND", EINVAL, `the data's ArrayBuffer changed size (${op.length} to ${op.data.byteLength} bytes: transferred or resized) after send() and before it reached the sender on fd ${this.fd}: nothing was sent`));
      return;
    }
    // From here the bytes belong to the stream: an abort no longer applies (SendOptions).
    op.unwatch();
    if (!this.corked) {
      this.corked = true;
      zc.cork();
    }
    if (!this.scheduled) {
      this.scheduled = true;
      this.host.loop.beforeSubmit(this);
    }
    // The sender reports "released" through its own callback; until then the op owes one.
    op.notifs = 1;
    try {
      zc.send(op.data, op);
    } catch (e) {
      op.notifs = 0;
      op.fail(e instanceof UringError ? e : new UringError("ZcSender.send", EIO, String(e)));
      return;
    }
    this.ops++;
  }

  private zcSent(op: SendOp, res: number): void {
    const len = op.data.byteLength;
    if (res === len) op.resolveSent();
    // The sender's last error names the opcode the send went out as and why it came back short.
    else if (res >= 0) op.fail(this.zc!.stats.lastError ?? new UringError("IORING_OP_SEND", EIO, `short send: ${res} of ${len} bytes on fd ${this.fd}`));
    else op.fail(this.zc!.stats.lastError ?? new UringError("IORING_OP_SEND", -res, `fd ${this.fd}`));
  }

  private zcReleased(op: SendOp, usage: ZcUsage): void {
    this.ops--;
    op.notifs = 0;
    op.zeroCopy = usage !== "copy-send";
    op.copied = usage === "copied";
    if (usage === "zerocopy") this.sendStats.zeroCopy++;
    else if (usage === "copied") this.sendStats.copied++;
    else if (usage === "copy-send") this.sendStats.plain++;
    this.sendStats.fallbacks = this.zc!.stats.decision === "copy" ? this.zc!.stats.switches : this.sendStats.fallbacks;
    if (!op.isSent) op.fail(new UringError("IORING_OP_SEND", ECANCELED, `fd ${this.fd}`));
    op.release();
    // Room in the sender: move waiting sends in (they go out with this turn's submit).
    while (this.qHead < this.queue.length && this.zc!.available > 0 && !this.host.closing) this.zcSubmit(this.queue[this.qHead++]!);
    if (this.qHead === this.queue.length && this.qHead > 0) {
      this.queue.length = 0;
      this.qHead = 0;
    }
    if (this.readyWaiters.length + this.idleWaiters.length > 0 && this.pendingSends < this.host.maxInflightSends) this.wakeReady();
    this.checkClosed();
  }

  /** UDP: prepare every queued send the in-flight bound allows. */
  private pump(): void {
    const ring = this.host.ring;
    if (ring.isClosed || this.host.closing) return;
    let n = Math.min(this.queue.length - this.qHead, this.host.maxInflightSends - this.holding);
    if (n <= 0) return;
    if (ring.sqSpace < n) ring.submit();
    n = Math.min(n, ring.sqSpace);
    for (let i = 0; i < n; i++) {
      const op = this.queue[this.qHead]!;
      if (op.data.byteLength !== op.length) {
        // Transferred or shrunk after send() returned: the view no longer covers the bytes it
        // had (a stale pointer would reach someone else's memory). Checked here, where the SQE
        // is written.
        this.qHead++;
        const how = (op.data.buffer as ArrayBuffer).detached === true ? "detached (transferred)" : `resized to ${op.data.byteLength} bytes`;
        op.fail(new UringError("IORING_OP_SEND", EINVAL, `the data's ArrayBuffer was ${how} after send() and before the datagram went out on fd ${this.fd}: nothing was sent`));
        continue;
      }
      let ud: number;
      try {
        ud = ring.ops.add(onSendCqe, op, op.data);
      } catch (e) {
        // The op table is full: leave the rest queued; a completion will pump again.
        if (this.ops === 0) {
          this.qHead++;
          op.fail(e as UringError);
        }
        break;
      }
      this.qHead++;
      const slot = ring.getSqe();
      const len = op.data.byteLength;
      const addr = len === 0 ? 0 : addressOf(op.data);
      const zc = this.chooseZc(len);
      if (zc) prepSendZc(ring.sq, slot, this.fd, addr, len, this.msgFlags, this.host.zcFlags);
      else prepSend(ring.sq, slot, this.fd, addr, len, this.msgFlags);
      op.zeroCopy = zc;
      op.userData = ud;
      if (op.to !== null) {
        ring.ops.scratch.set(op.to.bytes, ring.ops.scratchOffset(ud));
        prepSendSetAddr(ring.sq, slot, ring.ops.scratchAddressOf(ud), op.to.length);
      }
      ring.setUserData(slot, ud);
      this.holding++;
      this.ops++;
    }
    if (this.qHead === this.queue.length) {
      this.queue.length = 0;
      this.qHead = 0;
    } else if (this.qHead > 1024) {
      this.queue = this.queue.slice(this.qHead);
      this.qHead = 0;
    }
    this.host.kick();
  }

  private chooseZc(len: number): boolean {
    if (!this.host.sendZc || this.zcUnsupported || len < this.host.zcThresholdBytes) return false;
    if (!this.udpZc && --this.zcProbe <= 0) {
      this.udpZc = true;
      this.zcWinZc = this.zcWinCopied = 0;
    }
    return this.udpZc;
  }

  // ---- SendOwner ----

  /** @internal — first CQE of a UDP send. */
  onSent(op: SendOp, res: number, more: boolean): void {
    if (!more) this.sqeDone();
    op.userData = -1;
    const len = op.data.byteLength;
    const opcode = op.zeroCopy ? "IORING_OP_SEND_ZC" : "IORING_OP_SEND";
    if (res === len) {
      // Done before an abort's cancel reached it (the cancel finds nothing: ENOENT).
      if (!op.zeroCopy) this.sendStats.plain++;
      op.resolveSent();
    } else if (res >= 0) {
      op.fail(new UringError(opcode, EIO, `datagram of ${len} bytes sent as ${res}`));
    } else if (op.aborted && op.signal !== null && (res === -ECANCELED || res === -EOPNOTSUPP)) {
      // The kernel cancelled it for the signal (or refused SEND_ZC, and the signal says not to
      // try again): it never left.
      if (res === -EOPNOTSUPP) this.zcUnsupported = true;
      op.fail(abortError(op.signal, opcode));
    } else if (res === -EOPNOTSUPP && op.zeroCopy && !this.host.closing) {
      // This socket refuses SEND_ZC: plain SEND from now on, and this datagram goes again.
      this.zcUnsupported = true;
      this.queue.splice(this.qHead, 0, op);
    } else {
      op.fail(new UringError(opcode, -res, `fd ${this.fd}, ${len} bytes`));
    }
    if (this.qHead < this.queue.length) this.pump();
    this.checkClosed();
  }

  /** @internal */
  onNotif(op: SendOp, copied: boolean): void {
    this.sqeDone();
    if (copied) {
      op.copied = true;
      this.sendStats.copied++;
      this.zcWinCopied++;
    } else {
      this.sendStats.zeroCopy++;
      this.zcWinZc++;
    }
    if (this.host.zcFlags & Q.IORING_SEND_ZC_REPORT_USAGE && this.zcWinZc + this.zcWinCopied >= ZC_WINDOW) {
      if (this.zcWinCopied > this.zcWinZc && this.udpZc) {
        this.udpZc = false;
        this.zcProbe = ZC_PROBE_AFTER;
        this.sendStats.fallbacks++;
      }
      this.zcWinZc = this.zcWinCopied = 0;
    }
    if (op.notifs === 0 && op.isSent) op.release();
    if (this.qHead < this.queue.length) this.pump();
    this.checkClosed();
  }

  /** @internal */
  unholdChunk(hold: number): void {
    this.host.unholdChunk(Math.floor(hold / 65536), hold % 65536);
  }

  /** @internal — the signal of a send fired before it settled. */
  abortSend(op: SendOp): void {
    const signal = op.signal;
    if (signal === null) return;
    const i = this.queue.indexOf(op, this.qHead);
    if (i >= 0) {
      // Still queued: nothing reached the kernel, so it leaves the queue and settles now.
      this.queue.splice(i, 1);
      if (this.qHead === this.queue.length) {
        this.queue.length = 0;
        this.qHead = 0;
      }
      op.fail(abortError(signal, "IORING_OP_SEND"));
      if (this.readyWaiters.length + this.idleWaiters.length > 0 && this.pendingSends < this.host.maxInflightSends) this.wakeReady();
      this.checkClosed();
      return;
    }
    if (this.zc === null && op.userData >= 0 && !op.aborted) {
      // A datagram in the kernel (waiting for socket space): ask the kernel to cancel it. Its CQE
      // says which won — -ECANCELED (onSent rejects it) or the byte count (it had gone).
      op.aborted = true;
      this.host.trackCancel(op.userData);
    }
  }

  private sqeDone(): void {
    this.holding--;
    this.ops--;
    if (this.readyWaiters.length + this.idleWaiters.length > 0 && this.pendingSends < this.host.maxInflightSends) this.wakeReady();
  }

  private wakeReady(): void {
    const w = this.readyWaiters;
    if (w.length > 0) {
      this.readyWaiters = [];
      for (const f of w) f();
    }
    if (this.idleWaiters.length > 0 && (this.pendingSends === 0 || this.fdClosed)) {
      const idle = this.idleWaiters;
      this.idleWaiters = [];
      for (const f of idle) f();
    }
  }

  // ---- RecvSocket ----

  /** @internal */
  opDelta(delta: number): void {
    this.ops += delta;
    if (delta < 0) this.checkClosed();
  }

  /** @internal */
  streamEnded(stream: RecvStreamBase<any>): void {
    if (this.recvStream === stream) this.recvStream = null;
    this.checkClosed();
  }

  private checkClosed(): void {
    if (!this.closing || this.fdClosed || this.host.closing) return;
    if (this.ops > 0 || this.qHead < this.queue.length || this.recvStream !== null) return;
    this.closeFd();
  }
}

/** A connected TCP socket. */
export class TcpSocket extends AsyncSocket {
  /** @internal */
  constructor(host: SocketHost, fd: number) {
    super(host, fd, true);
  }

  /** The peer's address (getpeername). */
  get remoteAddress(): DecodedAddress {
    this.liveFd("remoteAddress");
    return peerAddress(this.fd);
  }

  /** TCP_NODELAY on or off (on by default). */
  setNoDelay(on = true): void {
    this.liveFd("setNoDelay");
    if (typeof on !== "boolean") throw invalidArgument("setNoDelay", `on must be a boolean, got ${String(on)}`);
    setNoDelay(this.fd, on);
  }

  /** SO_KEEPALIVE on or off; with `initialDelayMs`, the idle time before the first probe
   * (TCP_KEEPIDLE, rounded up to whole seconds; 0 keeps the kernel's). */
  setKeepAlive(on: boolean, initialDelayMs = 0): void {
    this.liveFd("setKeepAlive");
    if (typeof on !== "boolean") throw invalidArgument("setKeepAlive", `on must be a boolean, got ${String(on)}`);
    setKeepAlive(this.fd, on, keepIdleSeconds("setKeepAlive", initialDelayMs));
  }
}

/** A UDP socket: bound, and connected when `connect` was given. */
export class UdpSocket extends AsyncSocket {
  /** Whether the socket was connected to a peer (UdpOptions.connect). */
  readonly connected: boolean;

  /** @internal */
  constructor(host: SocketHost, fd: number, connected = false) {
    super(host, fd, false);
    this.connected = connected;
  }

  /** Half-close a connected UDP socket once its queued sends are through. An unconnected one is
   * refused up front: Linux would shut it for writing and still answer ENOTCONN, leaving every
   * later sendTo failing with EPIPE. */
  override end(): Promise<void> {
    if (!this.connected) return Promise.reject(invalidArgument("end", "an unconnected UDP socket has no peer to half-close; close() it instead"));
    return super.end();
  }

  /** Send one datagram; `to` is required unless the socket is connected. Encode a destination
   * used often once with `sockaddr()` and pass that, to skip parsing per send. `options.signal`
   * aborts it (SendOptions). */
  sendTo(data: Uint8Array | string, to: SocketAddress | Sockaddr, options?: SendOptions): SendOp {
    const addr = "bytes" in to ? (to as Sockaddr) : sockaddr(to);
    return this.enqueue(data, addr, options);
  }

  /** Receive datagrams with their senders' addresses: an async iterable of
   * `{ data, from, truncated, datagramBytes }` (one multishot IORING_OP_RECVMSG, Linux 6.0+).
   * `data` is a view of a provided buffer, valid until the next iteration step, like recv()'s
   * chunks. A datagram larger than `stream.maxPayloadBytes` (recvBufferBytes minus 44 bytes of
   * header and address) arrives cut, with `truncated: true` and its full size in
   * `datagramBytes`; the stream goes on. One receive stream (recv or recvFrom) per socket at a
   * time; `options.signal` cancels it like recv()'s. */
  recvFrom(options: RecvStreamOptions = {}): RecvFromStream {
    if (this.isClosed) throw closedError("recvFrom", "socket");
    const paused = this.resumable(RecvFromStream, "recvFrom", options);
    if (paused !== null) return paused;
    const kernel = this.host.ring.capabilities.kernel;
    if (!kernelAtLeast("6.0", kernel)) throw unsupported("recvFrom", "multishot receive with the sender's address (IORING_OP_RECVMSG with IORING_RECV_MULTISHOT)", "6.0", kernel);
    const bufferBytes = this.host.buffers().bufferSize;
    if (bufferBytes < RECVFROM_HEADER_BYTES) {
      throw invalidArgument("recvFrom", `receive buffers of ${bufferBytes} bytes cannot hold the ${RECVFROM_HEADER_BYTES}-byte io_uring_recvmsg_out header and address: open the ring with a larger recvBufferBytes`);
    }
    const s = new RecvFromStream(this.host, this, options);
    this.recvStream = s;
    return s;
  }
}
