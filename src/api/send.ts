// Sends of the async API: a SendOp is the handle `socket.send()` returns, with two moments — sent
// (the first CQE: the bytes are in the socket, or an error) and released (the buffer is the
// caller's again: the SEND_ZC notification, or the same CQE for a copying SEND). The socket's send
// engine (ZcSender) carries the SendOp as its tag and reports both moments; one send allocates the
// SendOp and, only when awaited, its promises. A send given an AbortSignal registers the SendOp
// itself as the listener (its handleEvent), so the signal costs no closure, and the listener is
// removed as soon as the send's first moment settles.
import { UringError } from "../error.ts";

/** What the socket side of a send does for it. */
export interface SendOwner {
  /** The signal of `op` fired before its first moment settled. */
  abortSend(op: SendOp): void;
  /** `op` was released; it held received chunks' buffers (`hold`, from holdChunk). */
  unholdChunk(hold: number): void;
  /** `op` fails with `error`: the socket records its first error, and gives a send cancelled
   * because an earlier one failed (a broken link chain: ECANCELED) that first error instead. */
  sendError(error: UringError): UringError;
}

/** Options of one send. */
export interface SendOptions {
  /** Aborts the send. Already aborted: the send rejects at once and nothing is submitted. Fired
   * while the send waits in the socket's send queue (its SQE is written at the end of the turn,
   * or later behind `maxInflightSends`): it leaves the queue and rejects. Fired while a UDP send
   * is in the kernel: IORING_OP_ASYNC_CANCEL is submitted for it, and `sent` rejects if the kernel
   * cancelled it (ECANCELED) or resolves if the datagram had already gone. A TCP send in the
   * kernel is never cancelled (a send cut in the middle of a linked chain would leave a gap or
   * half a message in the byte stream): it completes normally. Every rejection is the abort error
   * (ECANCELED, the signal's reason as cause), and `released` still resolves exactly once, after
   * the kernel's last CQE. */
  signal?: AbortSignal;
}

const SENT_PENDING = 0;
const SENT_OK = 1;
const SENT_FAILED = 2;

/** One send. Await it (or `.sent`) for the byte count; await `.released` before reusing the
 * buffer. Both settle exactly once; `released` never rejects (a failed send frees its buffer). */
export class SendOp implements PromiseLike<number> {
  /** @internal */ readonly owner: SendOwner;
  /** The caller's bytes: held (not copied) until released. */
  readonly data: Uint8Array;
  /** @internal — data's length when send() was called: a view that no longer has it (its
   * ArrayBuffer detached or shrunk since) is never handed to the kernel. */
  readonly length: number;
  /** Whether the data left through SEND_ZC (zero-copy requested) rather than SEND. */
  zeroCopy = false;
  /** Set when a notification said the kernel copied the data anyway. */
  copied = false;
  /** @internal — the signal watched until the first moment settles (null when none or done). */
  signal: AbortSignal | null = null;
  /** @internal — the signal fired and the engine took the send out of its queue or cancelled it
   * in the kernel: an ECANCELED outcome is the abort's. */
  abortRequested = false;
  /** @internal — receive buffers this send reads (a received chunk being echoed), held until
   * release: `first * 65536 + last`, or -1. */
  chunkHold = -1;
  private state = SENT_PENDING;
  private releasedFlag = false;
  private error: UringError | null = null;
  private sentPromise: Promise<number> | null = null;
  private sentResolve: ((n: number) => void) | null = null;
  private sentReject: ((e: unknown) => void) | null = null;
  private releasedPromise: Promise<void> | null = null;
  private releasedResolve: (() => void) | null = null;

  /** @internal */
  constructor(owner: SendOwner, data: Uint8Array) {
    this.owner = owner;
    this.data = data;
    this.length = data.byteLength;
  }

  /** Bytes sent, once `sent` settled successfully (0 before, or when it failed). */
  get bytes(): number {
    return this.state === SENT_OK ? this.data.byteLength : 0;
  }

  /** Whether the first moment has passed (successfully or not). */
  get isSent(): boolean {
    return this.state !== SENT_PENDING;
  }

  /** Whether the buffer is free again. */
  get isReleased(): boolean {
    return this.releasedFlag;
  }

  /** Resolves with the byte count once the data is in the socket; rejects with UringError. */
  get sent(): Promise<number> {
    if (this.sentPromise === null) {
      if (this.state === SENT_OK) this.sentPromise = Promise.resolve(this.data.byteLength);
      else if (this.state === SENT_FAILED) this.sentPromise = Promise.reject(this.error);
      else {
        this.sentPromise = new Promise<number>((resolve, reject) => {
          this.sentResolve = resolve;
          this.sentReject = reject;
        });
      }
    }
    return this.sentPromise;
  }

  /** Resolves when the kernel no longer reads the buffer: it may be modified or reused. */
  get released(): Promise<void> {
    if (this.releasedPromise === null) {
      if (this.releasedFlag) this.releasedPromise = Promise.resolve();
      else this.releasedPromise = new Promise<void>((resolve) => (this.releasedResolve = resolve));
    }
    return this.releasedPromise;
  }

  /** @internal — listen for `signal` (the op itself is the listener: see handleEvent). */
  watch(signal: AbortSignal): void {
    this.signal = signal;
    signal.addEventListener("abort", this);
  }

  /** @internal — the signal's abort event (EventListener object protocol). */
  handleEvent(): void {
    if (this.state === SENT_PENDING) this.owner.abortSend(this);
  }

  /** @internal — stop listening (the send settled, or can no longer be aborted). */
  unwatch(): void {
    const signal = this.signal;
    if (signal === null) return;
    this.signal = null;
    signal.removeEventListener("abort", this);
  }

  then<A = number, B = never>(
    onSent?: ((n: number) => A | PromiseLike<A>) | null,
    onError?: ((e: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    return this.sent.then(onSent, onError);
  }

  /** @internal — the first moment, successful; `release()` is the second. */
  resolveSent(): void {
    if (this.state !== SENT_PENDING) return;
    this.state = SENT_OK;
    this.unwatch();
    if (this.sentResolve !== null) this.sentResolve(this.data.byteLength);
    this.sentResolve = this.sentReject = null;
  }

  /** @internal */
  fail(error: UringError): void {
    if (this.state !== SENT_PENDING) return;
    this.state = SENT_FAILED;
    error = this.owner.sendError(error);
    this.error = error;
    this.unwatch();
    if (this.sentReject !== null) this.sentReject(error);
    this.sentResolve = this.sentReject = null;
  }

  /** @internal — a send that never reached the engine settles both moments at once: resolved
   * (`error` null: nothing to send) or failed. */
  settleAlone(error: UringError | null): void {
    if (error === null) this.resolveSent();
    else this.fail(error);
    this.release();
  }

  /** @internal */
  release(): void {
    if (this.releasedFlag) return;
    this.releasedFlag = true;
    if (this.chunkHold >= 0) {
      const hold = this.chunkHold;
      this.chunkHold = -1;
      this.owner.unholdChunk(hold);
    }
    if (this.releasedResolve !== null) this.releasedResolve();
    this.releasedResolve = null;
  }
}
