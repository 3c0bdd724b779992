// The life of a send after it was written: its first CQE ("sent": bytes or -errno, shared out over
// the sends of a gathered operation), its release (at the notification, or at a first CQE without
// IORING_CQE_F_MORE, exactly once per send), failures before the kernel saw it, and the user
// callbacks, whose exceptions never cut the bookkeeping short.
//
// A SEND_ZC posts a first CQE and, if and only if that CQE has F_MORE, a later notification with
// IORING_CQE_F_NOTIF: only then may the buffer be reused (io_uring/net.c io_send_zc,
// io_uring/notif.c). Errors follow the same rule. Notifications can arrive out of order; each one
// names its own operation, so a record is released by its own notification only.
import * as Q from "../abi/sqe.ts";
import { ECANCELED, EFAULT, EOPNOTSUPP, EPIPE, ERRNO } from "../abi/errno.ts";
import { SOL_SOCKET, SO_ERROR } from "../abi/net.ts";
import { getOptionNow } from "../net/setup.ts";
import { UringError } from "../error.ts";
import type { AdaptivePolicy } from "./policy.ts";
import { KIND_COPY, SEND_AWAIT_NOTIF, SEND_SUBMITTED, type SendQueue, type SendRecords } from "./records.ts";
import type { ZcStats } from "./stats.ts";
import type { ZcUsage } from "./sender.ts";

const EIO = ERRNO.EIO!;

/** Where the two moments of a send are reported (the sender's public onSent / onReleased, read
 * at each call so a caller may replace them at any time). onSent's `error` is null when the send
 * went whole (res = its bytes), else the error that names the opcode, the errno and why. */
export interface SendCallbacks {
  onSent: ((tag: any, res: number, error: UringError | null) => void) | undefined;
  onReleased: ((tag: any, usage: ZcUsage) => void) | undefined;
}

export class SendLifecycle {
  /** A stream send failed: later sends are refused (their bytes would land after a gap). */
  broken = false;
  private readonly records: SendRecords;
  private readonly stats: ZcStats;
  private readonly policy: AdaptivePolicy | null;
  private readonly callbacks: SendCallbacks;
  private readonly stream: boolean;
  private readonly fd: number;
  private readonly reportUsage: boolean;
  /** The first error a user callback threw, rethrown once the sender's state is whole again. */
  private callbackError: unknown = undefined;
  private callbackFailed = false;

  constructor(
    records: SendRecords,
    stats: ZcStats,
    policy: AdaptivePolicy | null,
    callbacks: SendCallbacks,
    stream: boolean,
    fd: number,
    reportUsage: boolean,
  ) {
    this.records = records;
    this.stats = stats;
    this.policy = policy;
    this.callbacks = callbacks;
    this.stream = stream;
    this.fd = fd;
    this.reportUsage = reportUsage;
  }

  /** A CQE under the user_data of the operation headed by `head`. Returns true for its first CQE
   * ("sent"), false for a notification, the abandonment at Ring.close, or an anomaly. */
  onCqe(head: number, res: number, flags: number, index: number): boolean {
    const rec = this.records;
    // index -1: the ring was closed before this operation's last CQE (Ring.close abandons it).
    // A send still waiting for its notification is released then, its usage unreported.
    if (index < 0 && rec.state[head] === SEND_AWAIT_NOTIF) {
      this.release(head, 0, false);
      return false;
    }
    if (flags & Q.IORING_CQE_F_NOTIF) {
      this.onNotification(head, res);
      return false;
    }
    if (rec.state[head] !== SEND_SUBMITTED) {
      this.stats.anomalies++;
      return false;
    }
    const s = this.stats;
    const kind = rec.kind[head]!;
    const total = rec.opBytes[head]!;
    // The error of the operation's sends that did not go whole (built once per operation).
    let opError: UringError | null = null;
    if (res >= 0) {
      s.sentBytes += res;
      if (kind === KIND_COPY) s.copySendBytes += res;
      if (this.stream && res < total) {
        // With MSG_WAITALL a stream send comes back short only when the socket failed part way
        // (io_send_zc returns the bytes done before the error): later bytes would follow a gap.
        s.shortSends++;
        this.broken = true;
        // The kernel returns the bytes done and leaves the cause as the socket's pending error
        // (tcp_sendmsg: sk_err, e.g. ECONNRESET); with none pending the send side was shut down,
        // which a send reports as EPIPE.
        const pending = getOptionNow(this.fd, SOL_SOCKET, SO_ERROR);
        s.lastError = new UringError(
          `IORING_OP_${Q.opcodeName(rec.opcode[head]!)}`,
          pending > 0 ? pending : EPIPE,
          `fd ${this.fd}: short send, ${res} of ${total} bytes; the stream failed part way`,
          "the connection broke during the send (reset or shut down); later sends are refused",
        );
        opError = s.lastError;
      } else if (!this.stream && res < total) {
        opError = new UringError(
          `IORING_OP_${Q.opcodeName(rec.opcode[head]!)}`,
          EIO,
          `fd ${this.fd}: datagram of ${total} bytes sent as ${res}`,
        );
      }
    } else {
      const own = new UringError(`IORING_OP_${Q.opcodeName(rec.opcode[head]!)}`, -res, `fd ${this.fd}, ${total} bytes`);
      if (res !== -ECANCELED || s.lastError === null) s.lastError = own;
      // A stream send cancelled because one before it in its chain failed carries that failure;
      // a datagram's ECANCELED is its own (an owner's cancel).
      opError = this.stream ? s.lastError : own;
      if (this.stream) this.broken = true;
      if (res === -EOPNOTSUPP && this.policy !== null) {
        this.policy.refuseZeroCopy(
          "the kernel refused SEND_ZC on this socket (EOPNOTSUPP): every send is IORING_OP_SEND",
        );
      }
    }
    const policy = this.policy;
    if (policy !== null && rec.writtenAt[head]! > 0)
      policy.observeSent(rec.length[head]!, kind !== KIND_COPY, res, rec.sendsIn(head), rec.writtenAt[head]!);
    const more = (flags & Q.IORING_CQE_F_MORE) !== 0;
    // "sent" for each send of the operation: its bytes, the part of a short result it got, or
    // the error.
    let left = res;
    const cb = this.callbacks.onSent;
    for (let r = head; r >= 0; r = rec.next[r]!) {
      let mine: number;
      if (res < 0) mine = res;
      else {
        const len = rec.length[r]!;
        mine = left >= len ? len : left > 0 ? left : -ECANCELED;
        if (left > 0) left -= mine;
      }
      rec.result[r] = mine;
      s.sent++;
      if (mine < 0) s.errors++;
      if (more) rec.state[r] = SEND_AWAIT_NOTIF;
      if (cb !== undefined) this.callSent(cb, rec.tag[r], mine, mine === rec.length[r] ? null : opError);
    }
    // With F_MORE a notification follows; without, none comes and the sends are released now.
    if (!more) this.release(head, 0, false);
    return true;
  }

  /** The notification of the operation headed by `head` (`res` carries REPORT_USAGE's answer). */
  onNotification(head: number, res: number): void {
    if (this.records.state[head] !== SEND_AWAIT_NOTIF) {
      this.stats.anomalies++;
      return;
    }
    this.release(head, res, true);
  }

  /** Release every send of an operation (exactly once each: records go back to the free list). */
  release(head: number, res: number, notified: boolean): void {
    const rec = this.records;
    const s = this.stats;
    const kind = rec.kind[head]!;
    let usage: ZcUsage;
    if (kind === KIND_COPY) usage = "copy-send";
    else if (!notified || !this.reportUsage) usage = "unreported";
    else usage = (res & Q.IORING_NOTIF_USAGE_ZC_COPIED) !== 0 ? "copied" : "zerocopy";
    if (notified && this.policy !== null)
      this.policy.observeNotification(rec.length[head]!, usage === "copied", rec.sendsIn(head));
    const cb = this.callbacks.onReleased;
    if (notified) s.notifCqes++;
    let r = head;
    while (r >= 0) {
      const next = rec.next[r]!;
      const bytes = rec.result[r]! > 0 ? rec.result[r]! : 0;
      if (notified) {
        s.notifications++;
        if (usage === "copied") {
          s.copiedNotifications++;
          s.copiedBytes += bytes;
        } else if (usage === "zerocopy") {
          s.zcNotifications++;
          s.zcBytes += bytes;
        }
      }
      const tag = rec.tag[r];
      rec.free(r);
      s.released++;
      if (cb !== undefined) this.callReleased(cb, tag, usage);
      r = next;
    }
  }

  /** Fail every send of an operation that could not be written, with the error's errno. */
  failOp(head: number, e: unknown): void {
    const rec = this.records;
    const error = e instanceof UringError ? e : new UringError("ZcSender.send", ECANCELED, String(e));
    const res = -error.errno;
    this.stats.lastError = error;
    if (this.stream) this.broken = true;
    for (let r = head; r >= 0; r = rec.next[r]!) {
      rec.result[r] = res;
      this.stats.errors++;
      const cb = this.callbacks.onSent;
      if (cb !== undefined) this.callSent(cb, rec.tag[r], res, error);
    }
    this.release(head, 0, false);
  }

  /** Fail every send still queued: none reaches the kernel; each still gets both callbacks, with
   * `error` (default: the error that broke the stream, or ECANCELED). */
  failQueued(queue: SendQueue, error: UringError | null = null): void {
    const rec = this.records;
    while (queue.count > 0) {
      const r = queue.shift();
      // The send whose buffer went away says so; the ones behind it were cancelled.
      if (rec.intact(r)) this.failAlone(r, -ECANCELED, error ?? this.stats.lastError ?? this.cancelled(r));
      else this.failAlone(r, -EFAULT, this.detachedError(r));
    }
  }

  /** A queued send the owner cancelled: it alone fails, with `error` (ECANCELED), and is released. */
  cancelQueued(r: number, error: UringError): void {
    this.failAlone(r, -ECANCELED, error);
  }

  /** A datagram whose buffer went away: it alone fails, with EFAULT, and is released. */
  failDetached(r: number): void {
    const error = this.detachedError(r);
    this.stats.lastError = error;
    this.failAlone(r, -EFAULT, error);
  }

  /** A stream send whose buffer went away: the stream is broken from it on (failQueued ends it). */
  breakOnDetached(r: number): void {
    this.broken = true;
    this.stats.lastError = this.detachedError(r);
  }

  /** Rethrow the first callback error (once), after the sender's state is whole again. */
  raiseCallbackError(): void {
    if (!this.callbackFailed) return;
    const e = this.callbackError;
    this.callbackFailed = false;
    this.callbackError = undefined;
    throw e;
  }

  /** One queued send fails with `res` (-errno) and `error`, and is released. */
  private failAlone(r: number, res: number, error: UringError): void {
    this.records.result[r] = res;
    this.records.next[r] = -1;
    this.stats.errors++;
    const cb = this.callbacks.onSent;
    if (cb !== undefined) this.callSent(cb, this.records.tag[r], res, error);
    this.release(r, 0, false);
  }

  /** The error of a queued send that never went out because the sender stopped before it. */
  private cancelled(r: number): UringError {
    return new UringError(
      "ZcSender.send",
      ECANCELED,
      `fd ${this.fd}: a queued ${this.records.length[r]}-byte send was cancelled before its SQE was written; nothing of it was sent`,
    );
  }

  /** The error for a send whose buffer went away before its SQE was written. */
  private detachedError(r: number): UringError {
    return new UringError(
      "ZcSender.send",
      EFAULT,
      `fd ${this.fd}: the buffer of a queued ${this.records.length[r]}-byte send was detached (transferred) or shrunk before its SQE was written; nothing of it was sent`,
      "keep a sent buffer unchanged (no transfer(), no resize()) until onReleased",
    );
  }

  /** Run a user callback without letting its exception cut the bookkeeping short: the first error
   * is kept and rethrown by raiseCallbackError once every record is accounted for. */
  private callSent(
    cb: (tag: any, res: number, error: UringError | null) => void,
    tag: unknown,
    res: number,
    error: UringError | null,
  ): void {
    try {
      cb(tag, res, error);
    } catch (e) {
      this.keepCallbackError(e);
    }
  }

  private callReleased(cb: (tag: any, usage: ZcUsage) => void, tag: unknown, usage: ZcUsage): void {
    try {
      cb(tag, usage);
    } catch (e) {
      this.keepCallbackError(e);
    }
  }

  private keepCallbackError(e: unknown): void {
    if (this.callbackFailed) return;
    this.callbackFailed = true;
    this.callbackError = e;
  }
}
