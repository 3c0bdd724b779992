// Sockets of the async API. TCP and UDP sends go through one send engine, the zero-copy sender of
// src/zc (ZcSender, mode "adaptive" by default): its records are the one send queue, its policy
// chooses SEND_ZC or SEND, and its lifecycle reports each send's two moments (sent, released).
// On a stream it links the sends of one chain with IOSQE_IO_LINK and MSG_WAITALL so bytes leave in
// order; datagrams go out one operation each, with their own destination. The socket corks the
// engine during a turn and uncorks it just before the turn's submit, so every send of a turn goes
// out in one io_uring_enter. Backpressure: at most `maxInflightSends` sends hold buffers in the
// kernel at once; later ones wait in the engine's queue, and their `sent` settles when they went
// out. A send's AbortSignal takes it out of that queue, or cancels a datagram in the kernel
// (IORING_OP_ASYNC_CANCEL); a TCP send in the kernel is never cut (see SendOptions).
import { c, errno } from "../../ffi/index.ts";
import { ECANCELED, EFAULT, ERRNO } from "../abi/errno.ts";
import { SHUT_WR, SOL_SOCKET, SO_RCVBUF, SO_SNDBUF } from "../abi/net.ts";
import { checkBufferSize, getIntOption, keepIdleSeconds, setBufferSize, setKeepAlive, setNoDelay } from "./sockopt.ts";
import { UringError, closedError, invalidArgument, shown, unsupported } from "../error.ts";
import { kernelAtLeast } from "../ring/kernel.ts";
import type { LoopDriver, PreSubmit } from "../loop/driver.ts";
import { type DecodedAddress, type SocketAddress, type Sockaddr, checkSockaddr, sockaddr } from "../net/sockaddr.ts";
import { localAddress, peerAddress } from "../net/setup.ts";
import { ZcSender, type ZcMode, type ZcStats, type ZcUsage } from "../zc/sender.ts";
import { SendOp, type SendOptions, type SendOwner } from "./send.ts";
import {
  RECVFROM_HEADER_BYTES,
  RecvFromStream,
  RecvStream,
  type RecvHost,
  type RecvStreamBase,
  type RecvStreamOptions,
  type RecvSocket,
  abortError,
} from "./recv.ts";
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
  /** Decision changes of the send engine's adaptive policy (ZcStats.switches), as read at the
   * last release while its latest decision was SEND (AdaptivePolicy, src/zc/policy.ts). */
  fallbacks: number;
}

const encoder = new TextEncoder();
const EINVAL = ERRNO.EINVAL!;

export abstract class AsyncSocket implements SendOwner, RecvSocket, PreSubmit, AsyncDisposable {
  /** The socket's file descriptor (closed by close()). */
  readonly fd: number;
  readonly sendStats: SendStats = { zeroCopy: 0, copied: 0, plain: 0, fallbacks: 0 };
  /** @internal */ protected readonly host: SocketHost;
  private readonly stream: boolean;
  private scheduled = false;
  /** A retry of a stalled flush (op table full) is queued with setImmediate. */
  private retryQueued = false;
  private readonly retryTask = (): void => {
    this.retryQueued = false;
    if (this.fdClosed || this.host.ring.isClosed || this.scheduled) return;
    this.scheduled = true;
    this.host.loop.beforeSubmit(this);
  };
  /** Ring operations of this socket in flight other than sends (receive streams). */
  private ops = 0;
  /** @internal — the receive stream (recv or recvFrom): one at a time. */
  protected recvStream: RecvStreamBase<any> | null = null;
  private zcrxStream: ZcrxStream | null = null;
  private closing = false;
  private fdClosed = false;
  private closePromise: Promise<void> | null = null;
  private closeResolve: (() => void) | null = null;
  private firstError: UringError | null = null;
  private closedPromise: Promise<UringError | null> | null = null;
  private closedResolve: ((e: UringError | null) => void) | null = null;
  private readyWaiters: (() => void)[] = [];
  private idleWaiters: (() => void)[] = [];
  /** The send engine: the one queue of this socket's sends, their SQEs and their lifecycle. */
  private readonly engine: ZcSender;
  private corked = false;

  /** @internal */
  constructor(host: SocketHost, fd: number, stream: boolean) {
    this.host = host;
    this.fd = fd;
    this.stream = stream;
    const engine = new ZcSender(host.ring, fd, {
      mode: host.sendZc ? host.zcMode : "copy",
      threshold: host.zcThresholdBytes,
      // At most maxInflightSends sends hold buffers in the kernel; more wait in the engine's
      // queue, which grows instead of refusing (ready() is the producer's backpressure).
      capacity: host.maxInflightSends,
      grow: true,
      maxChain: host.maxInflightSends,
      reportUsage: host.zcFlags !== 0,
      stream,
    });
    engine.onSent = (op: SendOp, _res: number, error: UringError | null) => this.sent(op, error);
    engine.onReleased = (op: SendOp, usage: ZcUsage) => this.released(op, usage);
    this.engine = engine;
  }

  /** The send engine's counters: decision and reason, SEND_ZC / SEND counts, and what the
   * notifications reported. */
  get zcStats(): ZcStats {
    return this.engine.stats;
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
    return this.engine.inflight;
  }

  /** Operations of this socket in flight in the ring (sends holding buffers in the kernel
   * included). */
  get inflight(): number {
    return this.ops + this.engine.held;
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
    if ((bytes.buffer as ArrayBuffer).detached === true)
      throw invalidArgument("send", "data's ArrayBuffer is detached (transferred): there is nothing left to send");
    if (options !== undefined && (options === null || typeof options !== "object"))
      throw invalidArgument("send", `options must be an object such as { signal }, got ${shown(options)}`);
    const signal = options?.signal;
    if (signal !== undefined && !(signal instanceof AbortSignal))
      throw invalidArgument("send", "options.signal must be an AbortSignal");
    const op = new SendOp(this, bytes);
    // A received chunk being sent (the echo) keeps its receive buffer until this send releases it.
    op.chunkHold = this.host.holdChunk(bytes);
    if (signal?.aborted) {
      // Nothing is submitted: the op settles at once.
      op.settleAlone(abortError(signal, "IORING_OP_SEND"));
      return op;
    }
    if (this.closing) {
      op.settleAlone(closedError(this.stream ? "TcpSocket.send" : "UdpSocket.send", "socket"));
      return op;
    }
    // An empty write on a stream has nothing to send; an empty datagram is a datagram.
    if (bytes.byteLength === 0 && this.stream) {
      op.settleAlone(null);
      return op;
    }
    if (!this.corked) {
      this.corked = true;
      this.engine.cork();
    }
    if (!this.scheduled) {
      this.scheduled = true;
      this.host.loop.beforeSubmit(this);
    }
    try {
      this.engine.send(bytes, op, to);
    } catch (e) {
      op.settleAlone(e instanceof UringError ? e : new UringError("ZcSender.send", EINVAL, String(e)));
      return op;
    }
    if (signal !== undefined) op.watch(signal);
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
  protected resumable<S extends RecvStreamBase<any>>(
    kind: abstract new (...a: any[]) => S,
    where: string,
    options: RecvStreamOptions,
  ): S | null {
    const cur = this.recvStream;
    if (cur === null) return null;
    if (!cur.isPaused)
      throw invalidArgument(where, "this socket already has a receive stream; finish it (break or return()) first");
    if (!(cur instanceof kind))
      throw invalidArgument(
        where,
        `a ${where === "recv" ? "recvFrom()" : "recv()"} stream of this socket was left with data still queued: read it with ${where === "recv" ? "recvFrom()" : "recv()"} again, or close the socket`,
      );
    cur.resume(options);
    return cur;
  }

  /** Zero-copy receive (RECV_ZC) through the ring's registered ZCRX queue: an async iterable of
   * chunks read in place from the area; release each one (chunk.release()). TCP only; needs
   * AsyncRing.registerZcrx first. */
  recvZc(options: ZcrxRecvOptions = {}): ZcrxStream {
    if (this.closing) throw closedError("recvZc", "socket");
    if (!this.stream) throw invalidArgument("recvZc", "RECV_ZC receives TCP streams only");
    if (this.zcrxStream !== null && this.zcrxStream.armed)
      throw invalidArgument("recvZc", "this socket already has a zero-copy receive stream");
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
    this.corked = false;
    // Sends still queued in the engine (corked this turn, or waiting behind the in-flight bound)
    // never reach the kernel now: they fail and are released. Sends in the kernel are cancelled
    // or completed by the ring's close, and their callbacks run.
    this.engine.abandonQueued(closedError("send", "ring"));
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
    this.corked = false;
    if (this.host.ring.isClosed) return;
    this.engine.uncork();
    // The ring's op table was full and nothing of this socket is in flight to flush the rest
    // when it completes: try again on a later turn of the event loop (not in a microtask, since
    // entries free up only as other completions are handled).
    if (this.engine.stalled && !this.retryQueued) {
      this.retryQueued = true;
      setImmediate(this.retryTask);
    }
  }

  // ---- the engine's two moments ----

  /** "sent": the first CQE of the send's operation (or its failure before the kernel saw it). */
  private sent(op: SendOp, error: UringError | null): void {
    if (error === null) {
      op.resolveSent();
      return;
    }
    if (error.errno === ECANCELED && op.abortRequested && op.signal !== null) {
      // Taken out of the queue, or cancelled in the kernel, for the signal.
      op.fail(abortError(op.signal, error.syscall.startsWith("IORING_OP_") ? error.syscall : "IORING_OP_SEND"));
      return;
    }
    if (error.errno === EFAULT && op.data.byteLength !== op.length) {
      // The engine never wrote it: its ArrayBuffer was transferred or shrunk after send(), so the
      // view no longer covers the bytes it had (a stale pointer would reach someone else's memory).
      const how =
        (op.data.buffer as ArrayBuffer).detached === true
          ? "detached (transferred)"
          : `resized to ${op.data.byteLength} bytes`;
      op.fail(
        new UringError(
          "IORING_OP_SEND",
          EINVAL,
          `the data's ArrayBuffer was ${how} after send() and before its SQE was written on fd ${this.fd}: nothing was sent`,
          undefined,
          { cause: error },
        ),
      );
      return;
    }
    op.fail(error);
  }

  /** "released": the kernel no longer reads the send's buffer. */
  private released(op: SendOp, usage: ZcUsage): void {
    op.zeroCopy = usage !== "copy-send";
    op.copied = usage === "copied";
    if (usage === "zerocopy") this.sendStats.zeroCopy++;
    else if (usage === "copied") this.sendStats.copied++;
    else if (usage === "copy-send") this.sendStats.plain++;
    const stats = this.engine.stats;
    if (stats.decision === "copy") this.sendStats.fallbacks = stats.switches;
    // The engine reports "sent" before "released"; a send it dropped without one fails here.
    if (!op.isSent) op.fail(new UringError("IORING_OP_SEND", ECANCELED, `fd ${this.fd}`));
    op.release();
    if (this.readyWaiters.length + this.idleWaiters.length > 0 && this.pendingSends < this.host.maxInflightSends)
      this.wakeReady();
    this.checkClosed();
  }

  // ---- SendOwner ----

  /** @internal */
  unholdChunk(hold: number): void {
    this.host.unholdChunk(Math.floor(hold / 65536), hold % 65536);
  }

  /** @internal — the signal of a send fired before it settled: the engine takes it out of its
   * queue (it settles now) or cancels a datagram in the kernel (its CQE says which won); a stream
   * send in the kernel is never cut. */
  abortSend(op: SendOp): void {
    if (op.signal === null || op.abortRequested) return;
    op.abortRequested = true;
    if (!this.engine.cancel(op)) op.abortRequested = false;
    // A cancel for a datagram in the kernel was prepared: it goes out with this turn's submit.
    else if (!op.isSent) this.host.kick();
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
    if (this.ops > 0 || this.engine.inflight > 0 || this.recvStream !== null) return;
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
    if (typeof on !== "boolean") throw invalidArgument("setNoDelay", `on must be a boolean, got ${shown(on)}`);
    setNoDelay(this.fd, on);
  }

  /** SO_KEEPALIVE on or off; with `initialDelayMs`, the idle time before the first probe
   * (TCP_KEEPIDLE, rounded up to whole seconds; 0 keeps the kernel's). */
  setKeepAlive(on: boolean, initialDelayMs = 0): void {
    this.liveFd("setKeepAlive");
    if (typeof on !== "boolean") throw invalidArgument("setKeepAlive", `on must be a boolean, got ${shown(on)}`);
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
    if (!this.connected)
      return Promise.reject(
        invalidArgument("end", "an unconnected UDP socket has no peer to half-close; close() it instead"),
      );
    return super.end();
  }

  /** Send one datagram; `to` is required unless the socket is connected. Encode a destination
   * used often once with `sockaddr()` and pass that, to skip parsing per send. `options.signal`
   * aborts it (SendOptions). */
  sendTo(data: Uint8Array | string, to: SocketAddress | Sockaddr, options?: SendOptions): SendOp {
    if (to === null || typeof to !== "object")
      throw invalidArgument("sendTo", `to must be { host, port } or a Sockaddr from sockaddr(), got ${shown(to)}`);
    const addr = "bytes" in to ? checkSockaddr("sendTo", to) : sockaddr(to);
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
    if (!kernelAtLeast("6.0", kernel))
      throw unsupported(
        "recvFrom",
        "multishot receive with the sender's address (IORING_OP_RECVMSG with IORING_RECV_MULTISHOT)",
        "6.0",
        kernel,
      );
    const bufferBytes = this.host.buffers().bufferSize;
    if (bufferBytes < RECVFROM_HEADER_BYTES) {
      throw invalidArgument(
        "recvFrom",
        `receive buffers of ${bufferBytes} bytes cannot hold the ${RECVFROM_HEADER_BYTES}-byte io_uring_recvmsg_out header and address: open the ring with a larger recvBufferBytes`,
      );
    }
    const s = new RecvFromStream(this.host, this, options);
    this.recvStream = s;
    return s;
  }
}
