// What a ZcSender counts: per-socket counters updated in place, the current decision and its
// reason, and one entry per adaptive size class. Readable at any time; nothing here decides.
import type { UringError } from "../error.ts";
import type { ZcMode } from "./sender.ts";

/** Adaptive: one size class's choice and the measurement behind it. */
export class ZcSizeClass {
  /** Payloads of minBytes .. maxBytes (inclusive) belong to the class. */
  readonly minBytes: number;
  readonly maxBytes: number;
  decision: "zc" | "copy" = "zc";
  /** Whether trial windows are running for the class now. */
  measuring = false;
  reason = "";
  /** The last measurement's pooled rates (MB/s over its windows) and pairs SEND_ZC won. */
  zcMBs = 0;
  copyMBs = 0;
  zcWins = 0;
  pairs = 0;
  /** Completed measurements and decision changes. */
  measurements = 0;
  switches = 0;
  constructor(minBytes: number, maxBytes: number) {
    this.minBytes = minBytes;
    this.maxBytes = maxBytes;
  }
}

/** Per-socket counters, updated in place and readable at any time. */
export class ZcStats {
  mode: ZcMode = "adaptive";
  /** Adaptive: the latest decision of any size class, and why (the reason names the class).
   * Other modes: the mode's fixed choice. */
  decision: "zc" | "copy" = "zc";
  reason = "";
  /** Decision changes (adaptive, over all size classes). */
  switches = 0;
  /** Adaptive: the size classes seen so far (one entry per power of two), in order of first use. */
  readonly sizeClasses: ZcSizeClass[] = [];
  /** Sends accepted by send()/sendFixed()/sendmsg(). */
  sends = 0;
  /** First CQEs seen, bytes they reported, and those that were errors. */
  sent = 0;
  sentBytes = 0;
  errors = 0;
  /** Stream sends that came back short (the connection failed part way). */
  shortSends = 0;
  /** SQEs issued per kind. */
  copySends = 0;
  zcSends = 0;
  fixedSends = 0;
  msgSends = 0;
  /** Operations (SQEs) written, and sends that shared an operation with others (gathered). */
  ops = 0;
  gathered = 0;
  /** Bytes that went through plain SEND. */
  copySendBytes = 0;
  /** Sends released by a notification (F_NOTIF), split by REPORT_USAGE's answer, with their
   * bytes. A gathered operation's one notification releases, and counts, each send it carried;
   * `notifCqes` counts the notification CQEs themselves. */
  notifications = 0;
  notifCqes = 0;
  zcNotifications = 0;
  copiedNotifications = 0;
  zcBytes = 0;
  copiedBytes = 0;
  /** Sends released (exactly once each). */
  released = 0;
  /** Flushes that left sends queued because the ring's op table was full. */
  slotWaits = 0;
  /** A CQE for a send that was already released or never submitted: must stay 0. */
  anomalies = 0;
  reportUsage = true;
  /** Whether notifications come under a user_data of their own (sqe->addr3, Linux 7.1), and why
   * (or why not: the probe's answer). */
  notifUserData = false;
  notifUserDataReason = "";
  vectorized = false;
  vectorizedReason = "";
  /** The last error a send reported, as a UringError naming the opcode and cause. */
  lastError: UringError | null = null;

  /** Share of sent bytes that left without a copy, 0..1. */
  get zeroCopyShare(): number {
    const total = this.zcBytes + this.copiedBytes + this.copySendBytes;
    return total > 0 ? this.zcBytes / total : 0;
  }

  /** Record a decision and its reason, counting a change of kind as a switch. */
  decide(d: "zc" | "copy", reason: string): void {
    if (this.decision !== d) this.switches++;
    this.decision = d;
    this.reason = reason;
  }
}
