// Zero-copy send: the SEND_ZC lifecycle, usage reporting, modes, fixed buffers.
//
// API summary
//   new ZcSender(ring, fd, {mode?, reportUsage?, threshold?, capacity?, maxChain?, destination?,
//                pool?, window?, copiedRatio?, probeEvery?, sqeFlags?, vectorized?,
//                notifUserData?, stream?, rounds?, margin?, trialMs?, warmupMs?, remeasureMs?,
//                onSent?(tag, res), onReleased?(tag, usage)})
//     mode: "copy" | "zc" | "zc-fixed" | "mixed" | "adaptive" (default adaptive)
//       mixed: SEND below threshold (16 KiB), SEND_ZC above; stream order kept by IO_LINK chains
//       adaptive: below threshold (2 KiB) SEND; above it SEND_ZC or SEND per power-of-two size
//       class, as AdaptivePolicy (policy.ts) decides; stats.sizeClasses lists each class's
//       choice and reason; stats.decision / stats.reason say what and why
//     sender.send(buf: Uint8Array, tag?)          held until onReleased(tag, usage)
//     sender.sendFixed(poolIndex, length, tag?, offset?)   SEND_ZC + IORING_RECVSEND_FIXED_BUF
//     sender.sendmsg(header, body, tag?)          SEND_ZC|VECTORIZED (6.17) or SENDMSG_ZC, 2 iovecs
//     sender.cork() / uncork() / flush()          build one linked chain from many sends
//     sender.stats: ZcStats (decision + reason, zc/copied notifications and bytes, released,
//                   errors, lastError, notifUserData(+Reason), vectorized(+Reason), anomalies)
//     notifUserData: "auto" (default) | true | false: each notification under a user_data of
//       its own (sqe->addr3, its own op-table entry) where the kernel has it (Linux 7.1, probed:
//       probeNotifUserData); otherwise, or false, it carries its send's user_data and
//       IORING_CQE_F_NOTIF tells it apart; true on a kernel without it: UringError EOPNOTSUPP
//     sender.inflight / available / queued / isBroken
//   Callbacks: onSent(tag, res) once per send at its first CQE (bytes or -errno);
//   onReleased(tag, usage) exactly once per send, when the buffer may be reused;
//   usage: "zerocopy" | "copied" | "unreported" | "copy-send". No allocation per send: records
//   are preallocated and the op-table data is the record index.
//   Run the ring (ring.run / runUntil) to deliver completions; sends are written to the SQ at
//   send() (or at uncork()) and submitted by the next ring.submit / run.
//   FixedBufferPool.create(ring, {bufferSize, count}) -> pool: alloc() -> index | -1, free(i),
//     view(i): Uint8Array, address(i), indexOf(view), close(). Registered with
//     IORING_REGISTER_BUFFERS2; buffer i is buf_index i.
//   probeSendZcFlags(zcFlags), probeReportUsage() (re-exported here) and probeNotifUserData()
//     (src/ring/kernel.ts): what SEND_ZC accepts, asked once per process on a private ring;
//     checkZcSqeFlags(where, flags), zcSendError(res, detail)
// Files: sender.ts (API, writing the queue), options.ts, records.ts, plan.ts, encode.ts,
// lifecycle.ts, policy.ts, stats.ts, pool.ts; each says what it holds.
export * from "./sender.ts";
export * from "./pool.ts";
