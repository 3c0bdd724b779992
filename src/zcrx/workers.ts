// Scaling zcrx on one host: one Worker per receive queue, each with its own ring and its own ifq
// (a ring is single-issuer, and an rx queue takes one memory provider). These helpers plan the
// queue assignment and run a Worker script per plan, collecting one result message from each.
import { ETIME } from "../abi/errno.ts";
import { UringError, invalidArgument, shown } from "../error.ts";

/** What one Worker is told: its index, and the queue it owns (or device-less). */
export interface ZcrxWorkerPlan {
  index: number;
  ifname?: string;
  rxq: number;
  nodev: boolean;
}

export interface PlanOptions {
  count: number;
  /** The NIC; each Worker gets rx queue firstRxq + index. Absent with nodev. */
  ifname?: string;
  firstRxq?: number;
  nodev?: boolean;
}

/** One plan per Worker: consecutive rx queues from `firstRxq` (steer each flow to its queue with
 * `ethtool -N IF flow-type tcp6 dst-port PORT action RXQ`). */
export function planZcrxWorkers(o: PlanOptions): ZcrxWorkerPlan[] {
  if (!Number.isInteger(o.count) || o.count < 1 || o.count > 1024)
    throw invalidArgument("planZcrxWorkers", `count must be 1..1024, got ${shown(o.count)}`);
  if (!o.nodev && !o.ifname) throw invalidArgument("planZcrxWorkers", "give ifname (and firstRxq), or nodev: true");
  const first = o.firstRxq ?? 0;
  if (!Number.isInteger(first) || first < 0)
    throw invalidArgument("planZcrxWorkers", `firstRxq must be a non-negative integer, got ${shown(o.firstRxq)}`);
  const plans: ZcrxWorkerPlan[] = [];
  for (let i = 0; i < o.count; i++)
    plans.push({
      index: i,
      ifname: o.nodev ? undefined : o.ifname,
      rxq: o.nodev ? 0 : first + i,
      nodev: o.nodev === true,
    });
  return plans;
}

/** Start one Worker of `script` per message in `messages`, post it its message, and resolve with
 * each Worker's first reply `{ index, result }` in index order (a reply `{ error }` rejects).
 * Workers are terminated afterwards; `timeoutMs` bounds the whole run. */
export async function startZcrxWorkers<R>(
  script: URL | string,
  messages: Array<{ index: number } & Record<string, unknown>>,
  timeoutMs = 60_000,
): Promise<R[]> {
  const workers = messages.map(() => new Worker(script));
  try {
    const replies = messages.map(
      (m, i) =>
        new Promise<R>((resolve, reject) => {
          const w = workers[i]!;
          w.onmessage = (e: MessageEvent<{ index: number; result?: R; error?: string }>) => {
            if (e.data.error !== undefined) reject(new Error(`zcrx worker ${m.index}: ${e.data.error}`));
            else resolve(e.data.result as R);
          };
          w.onerror = (e) => reject(new Error(`zcrx worker ${m.index}: ${(e as ErrorEvent).message}`));
          w.postMessage(m);
        }),
    );
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new UringError("startZcrxWorkers", ETIME, `workers did not all reply within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([Promise.all(replies), timeout]);
    } finally {
      clearTimeout(timer);
    }
  } finally {
    for (const w of workers) w.terminate();
  }
}
