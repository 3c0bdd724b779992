// Tier 3: the async API's zero-copy receive (AsyncRing.registerZcrx + socket.recvZc()) on a real
// kernel, through device-less zcrx (ZCRX_REG_NODEV, Linux 7.1+), in the VM that scripts/vm.ts
// boots. The sender is a plain node:net client in another process; the receiver is the README's
// pattern, one release per chunk. Each test prints one `zcrx-vm-async:` JSON line.
import { describe, expect } from "bun:test";
import { join } from "node:path";
import { openRing } from "../../src/api/index.ts";
import { queryZcrx } from "../../src/zcrx/query.ts";
import { kernelAtLeast, kernelRelease } from "../../src/ring/kernel.ts";
import { testIf } from "../helpers.ts";
import { patternMatches } from "./fixtures/zcrx-pattern.ts";

const MiB = 1024 * 1024;
const inVm = process.env.BUN_URING_IN_VM === "1";
// Inside the VM on 7.1+ the test runs whatever the library's own probe says.
const gate = queryZcrx()?.nodev === true || (inVm && kernelAtLeast("7.1"))
  ? null
  : `ZCRX_REG_NODEV needs Linux 7.1+ (this kernel is ${kernelRelease()}); run it with \`bun scripts/vm.ts --kernel newest test/vm/zcrx-async.test.ts\``;

/** Refill entries per tail store the issue asks for, with the release-each pattern. */
const RELEASES_PER_PUBLISH_GOAL = 32;

async function receiveFromSender(total: number, areaBytes: number) {
  const t0 = performance.now();
  await using ring = openRing({ deferTaskrun: true, cqe32: true, cqEntries: 4096 });
  ring.registerZcrx({ nodev: true, areaBytes });
  const listener = ring.listen({ host: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  const sender = Bun.spawn([process.execPath, join(import.meta.dir, "fixtures", "zcrx-sender.ts"), String(listener.port), String(total)], { stdout: "inherit", stderr: "inherit" });
  const sock = await accepted;
  const stream = sock.recvZc();
  let got = 0, bad = -1;
  for await (const chunk of stream) {
    if (bad < 0 && !patternMatches(chunk.data, got)) bad = got;
    got += chunk.data.length;
    chunk.release();
  }
  const senderExit = await sender.exited;
  const stats = stream.receiver.stats.snapshot();
  await Promise.all([sock.close(), listener.close()]);
  const r = { kernel: kernelRelease(), bytes: got, first_mismatch: bad, sender_exit: senderExit, live_after: stream.receiver.live, stats, elapsed_ms: Math.round(performance.now() - t0) };
  console.log(`zcrx-vm-async: ${JSON.stringify(r)}`);
  return r;
}

describe("async recvZc() with ZCRX_REG_NODEV over loopback TCP", () => {
  testIf(gate, "release-each: every byte arrives in order, refills are batched (>= 32 per publish), flushes <= publishes", async () => {
    const total = 16 * MiB;
    const r = await receiveFromSender(total, MiB);
    expect(r.sender_exit).toBe(0);
    expect(r.bytes).toBe(total);
    expect(r.first_mismatch).toBe(-1);
    expect(r.live_after).toBe(0);
    const s = r.stats as { [k: string]: number };
    expect(s.released).toBe(s.chunks!);
    expect(s.published!).toBeGreaterThanOrEqual(s.publishes! * RELEASES_PER_PUBLISH_GOAL);
    expect(s.flushes!).toBeLessThanOrEqual(s.publishes!);
  }, 300_000);
});
