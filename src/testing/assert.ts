// An all-released check for tests of zero-copy receive code: after an application's receive
// code ran, every chunk it was given must have gone back, and (on the simulated kernel side)
// every buffer must have come home through the refill ring with no protocol violation.
import { ZcrxStream } from "../api/zcrx.ts";
import { ZcrxReceiver } from "../zcrx/receiver.ts";
import { SimulatedRecvZc } from "./zcrx-async.ts";
import { SimulatedZcrx } from "./zcrx.ts";

/** Held chunks listed in the message; the count is always complete. */
const LISTED_MAX = 10;

/** Throw an Error naming every chunk still held (handle, fd, area bytes) and every release not
 * yet given to the kernel, or return quietly. Pass the receiver, a stream (its receiver), or a
 * SimulatedRecvZc; with a simulated kernel side (`sim`, implied by a SimulatedRecvZc) it also
 * publishes what is due, lets the simulated kernel take every refill, and checks that no buffer
 * is still out and no refill entry was a violation. */
export function assertClean(target: ZcrxReceiver | ZcrxStream | SimulatedRecvZc, sim?: SimulatedZcrx): void {
  let rx: ZcrxReceiver;
  if (target instanceof SimulatedRecvZc) {
    rx = target.receiver;
    sim ??= target.sim;
  } else if (target instanceof ZcrxStream) rx = target.receiver;
  else if (target instanceof ZcrxReceiver) rx = target;
  else throw new TypeError("assertClean: pass a ZcrxReceiver, a ZcrxStream or a SimulatedRecvZc");
  const problems: string[] = [];
  const held = rx.heldChunks();
  if (held.length > 0) {
    const listed = held
      .slice(0, LISTED_MAX)
      .map((h) => `chunk ${h.chunk} (fd ${h.fd}, area bytes ${h.offset}..${h.offset + h.length})`);
    const more = held.length > LISTED_MAX ? `, and ${held.length - LISTED_MAX} more` : "";
    problems.push(`${held.length} chunk${held.length === 1 ? "" : "s"} still held: ${listed.join(", ")}${more}`);
  }
  if (sim !== undefined && !rx.isClosed) {
    // What a turn's publish would do; then the kernel side takes everything published.
    while (rx.needsPublish && rx.publish() > 0) sim.reclaim();
    sim.reclaim();
  }
  if (rx.pending > 0)
    problems.push(`${rx.pending} releases still wait for room in the refill ring (publish() moves them)`);
  else if (rx.needsPublish)
    problems.push(`${rx.unpublished} releases were never published (publish() or the next event-loop turn does it)`);
  if (sim !== undefined) {
    if (held.length === 0 && sim.buffersInUse > 0)
      problems.push(`the simulated kernel still lends ${sim.buffersInUse} buffers with no chunk held (releases lost?)`);
    if (sim.violations.length > 0) problems.push(`refill protocol violations: ${sim.violations.join("; ")}`);
  }
  if (problems.length > 0) throw new Error(`assertClean: ${problems.join("; ")}`);
}
