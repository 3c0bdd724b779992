// Planning a stream's queue into one linked chain of operations, without touching the ring: which
// queued sends share an operation (gathered into iovecs) and how many operations the chain holds.
// The sender writes what the plan says; a plan can be computed and checked in a test alone.
import { KIND_FIXED, type SendQueue, type SendRecords } from "./records.ts";

/** The most iovecs one operation may carry (UIO_MAXIOV): the kernel refuses more, EINVAL for a
 * vectorized send and EMSGSIZE for SENDMSG, so a gathered group stops there. */
export const UIO_MAXIOV = 1024;

export interface ChainLimits {
  /** Most operations in the chain (the sender's maxChain, the SQ's room and the op table's free
   * entries, whichever is least; at least 1). */
  maxOps: number;
  /** Most sends in one operation (the sender's maxChain). */
  maxGather: number;
  /** Most sends in the chain: the room left under the sender's bound on sends holding buffers
   * in the kernel (at least 1). */
  maxSends: number;
  /** Whether consecutive sends of the same kind may share an operation. */
  gather: boolean;
  /** Whether fixed-buffer sends may be gathered too: only with IORING_SEND_VECTORIZED (6.17), as
   * one SENDMSG_ZC with FIXED_BUF whose iovecs the kernel resolves in the registered buffer
   * (vectored registered buffers, 6.15). 6.1 and 6.12 take the same SQE but cut it short (seen:
   * "short send", the rest of the chain ECANCELED). */
  gatherFixed: boolean;
}

/** A chain: `ops` operations, operation g made of the `sizes[g]` queued sends from `heads[g]` on.
 * `detached` is the first record whose buffer went away since send() (-1: none): the plan stops at
 * it, and a stream cannot go past it. Reused from flush to flush. */
export class ChainPlan {
  readonly heads: Int32Array;
  readonly sizes: Int32Array;
  ops = 0;
  detached = -1;
  constructor(maxOps: number) {
    this.heads = new Int32Array(maxOps);
    this.sizes = new Int32Array(maxOps);
  }
}

/** Split the queue's front into operations: a group is consecutive sends of one kind and one
 * registered buffer, at most `maxGather` (and UIO_MAXIOV) of them. */
export function planChain(records: SendRecords, queue: SendQueue, limits: ChainLimits, plan: ChainPlan): void {
  const kinds = records.kind,
    bufs = records.bufIndex;
  let ops = 0,
    i = 0;
  plan.detached = -1;
  const count = Math.min(queue.count, limits.maxSends);
  while (i < count && ops < limits.maxOps) {
    const first = queue.at(i);
    if (!records.intact(first)) {
      plan.detached = first;
      break;
    }
    let n = 1;
    const kind = kinds[first]!;
    if (limits.gather && (kind < KIND_FIXED || (kind === KIND_FIXED && limits.gatherFixed))) {
      while (i + n < count && n < limits.maxGather && n < UIO_MAXIOV) {
        const r = queue.at(i + n);
        if (kinds[r] !== kind || bufs[r] !== bufs[first]) break;
        if (!records.intact(r)) {
          plan.detached = r;
          break;
        }
        n++;
      }
    }
    plan.heads[ops] = first;
    plan.sizes[ops] = n;
    ops++;
    i += n;
    if (plan.detached >= 0) break;
  }
  plan.ops = ops;
}
