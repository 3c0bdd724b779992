// Zero-copy receive with the async API: `for await (const chunk of socket.recvZc())`, each chunk
// read in place in the ZCRX area and released; the refills go back once per event-loop turn.
//   bun scripts/examples/zcrx-async.ts --nodev [-s BYTES]
//       device-less ZCRX (ZCRX_REG_NODEV, Linux 7.1+): a loopback client on the same ring sends
//       a pattern, the kernel copies it into the area, and every byte is checked.
//   bun scripts/examples/zcrx-async.ts --simulate [-s BYTES]
//       the same loop over bun-uring/testing's SimulatedRecvZc (no NIC, any kernel).
// Without either it says why it cannot run here and exits 0; a receive mismatch exits 1.
import { openRing, UringError, type ZcrxStream } from "../../src/index.ts";
import { kernelAtLeast, kernelRelease } from "../../src/raw.ts";
import { SimulatedRecvZc, assertClean } from "../../src/testing/index.ts";
import { mismatch, parseArgs, pattern } from "./lib.ts";

const args = parseArgs(process.argv.slice(2), { size: 4 * 1024 * 1024, nodev: false, simulate: false }, { s: "size" });
const size = args.size as number;

/** The application's receive loop: verify each chunk in place, release it, count. */
async function consume(stream: ZcrxStream, expect: Uint8Array): Promise<{ bytes: number; chunks: number }> {
  let bytes = 0,
    chunks = 0;
  for await (const chunk of stream) {
    const d = chunk.data;
    if (!Buffer.from(d.buffer, d.byteOffset, d.byteLength).equals(expect.subarray(bytes, bytes + d.byteLength))) {
      mismatch(`the chunk at stream byte ${bytes} differs from what was sent`);
    }
    bytes += d.byteLength;
    chunks++;
    chunk.release();
  }
  return { bytes, chunks };
}

function report(kind: string, got: { bytes: number; chunks: number }, stream: ZcrxStream): void {
  if (got.bytes !== size) mismatch(`${kind}: received ${got.bytes} of ${size} bytes`);
  const s = stream.stats;
  console.log(
    `zcrx-async (${kind}): ${got.bytes} bytes in ${got.chunks} chunks, byte-exact, all released; ` +
      `${s.published} refills in ${s.publishes} publishes (${s.batchMean.toFixed(1)} per publish), ${s.starvations} times the area ran dry`,
  );
}

if (args.simulate) {
  const host = new SimulatedRecvZc({ areaBytes: 1 << 20, rqEntries: 256 });
  const fd = host.connect();
  const data = pattern(size, 5);
  host.sim.send(fd, data);
  host.sim.shutdown(fd);
  const stream = host.recvZc(fd);
  const got = await consume(stream, data);
  // The last releases go back on the next turn; then nothing may be held or lost.
  await new Promise((r) => setImmediate(r));
  assertClean(host);
  report("simulated kernel", got, stream);
  host.close();
  process.exit(0);
}

if (!args.nodev) {
  console.log(
    `zcrx-async: cannot run here without --nodev or --simulate — device-less ZCRX (ZCRX_REG_NODEV) needs Linux 7.1+; this kernel is ${kernelRelease()}` +
      `${kernelAtLeast("7.1") ? " (it may work: try --nodev)" : ""}. --simulate runs the same loop against the simulator.`,
  );
  process.exit(0);
}

// ZCRX needs DEFER_TASKRUN and 32-byte CQEs; a CQ at least as large as the area's buffers.
await using ring = openRing({ deferTaskrun: true, cqe32: true, cqEntries: 4096 });
try {
  ring.registerZcrx({ nodev: true, areaBytes: 4 << 20 });
} catch (e) {
  if (!(e instanceof UringError)) throw e;
  console.log(`zcrx-async: cannot run here — ${e.message}`);
  process.exit(0);
}
const listener = ring.listen({ host: "127.0.0.1", port: 0 });
const accepted = listener.accept();
const client = await ring.connect({ host: "127.0.0.1", port: listener.port });
const server = await accepted;
const data = pattern(size, 6);
const sending = (async () => {
  await client.send(data).released;
  await client.end();
})();
const stream = server.recvZc();
const got = await consume(stream, data);
await sending;
report("ZCRX_REG_NODEV", got, stream);
// Sockets first, then the ring (await using): the ring's close unregisters the ifq with it and
// only then unmaps the area.
await Promise.all([client.close(), server.close(), listener.close()]);
