// Tier 3: the async API's zero-copy receive (AsyncRing.registerZcrx + socket.recvZc()) on a real
// kernel, through device-less zcrx (ZCRX_REG_NODEV, Linux 7.1+), in the VM that scripts/vm.ts
// boots. The sender is a plain node:net client in another process; the receiver is the README's
// pattern, one release per chunk. Each test prints one `zcrx-vm-async:` JSON line.
import { describe, expect } from "bun:test";
import { join } from "node:path";
import { openRing, type AsyncRing, type ZcrxStream } from "../../src/api/index.ts";
import { queryZcrx } from "../../src/zcrx/query.ts";
import { kernelAtLeast, kernelRelease } from "../../src/ring/kernel.ts";
import { testIf } from "../helpers.ts";
import { patternAt, patternMatches } from "./fixtures/zcrx-pattern.ts";

const MiB = 1024 * 1024;
const inVm = process.env.BUN_URING_IN_VM === "1";
// Inside the VM on 7.1+ the test runs whatever the library's own probe says.
const gate =
  queryZcrx()?.nodev === true || (inVm && kernelAtLeast("7.1"))
    ? null
    : `ZCRX_REG_NODEV needs Linux 7.1+ (this kernel is ${kernelRelease()}); run it with \`bun scripts/vm.ts --kernel newest test/vm/zcrx-async.test.ts\``;

/** Refill entries per tail store the issue asks for, with the release-each pattern. */
const RELEASES_PER_PUBLISH_GOAL = 32;

/** The sender: a node:net client in another process, or a client socket on the same ring. */
type SenderKind = "process" | "ring";

async function receiveFromSender(total: number, areaBytes: number, kind: SenderKind) {
  const t0 = performance.now();
  await using ring = openRing({ deferTaskrun: true, cqe32: true, cqEntries: 4096 });
  ring.registerZcrx({ nodev: true, areaBytes });
  const listener = ring.listen({ host: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  const sender = kind === "process" ? spawnSender(listener.port, total) : ringSender(ring, listener.port, total);
  // A stall says where it stands (an emulated CPU is slow, so only when nothing moved for 20 s).
  let stage = "accept",
    got = 0,
    seen = -1;
  let stream: ZcrxStream | null = null;
  const watchdog = setInterval(() => {
    if (got === seen)
      console.error(
        `zcrx-vm-async stalled: stage ${stage}, ${got} bytes, sender exit ${sender.exitCode()}, stream starved ${stream?.starved}, queued ${stream?.queued}, live ${stream?.receiver.live}, in flight ${ring.inflight}, stats ${JSON.stringify(stream?.stats)}`,
      );
    seen = got;
  }, 20_000);
  try {
    const sock = await accepted;
    stage = "receive";
    stream = sock.recvZc();
    let bad = -1;
    for await (const chunk of stream) {
      if (bad < 0 && !patternMatches(chunk.data, got)) bad = got;
      got += chunk.data.length;
      chunk.release();
    }
    stage = "close";
    // Our FIN first: the node:net sender ends its side and then waits for ours before it exits.
    await Promise.all([sock.close(), listener.close()]);
    const senderExit = await sender.exited;
    // One more turn: the publish of the final drain's releases.
    await new Promise((r) => setImmediate(r));
    return report(kind, got, bad, senderExit, stream, t0);
  } finally {
    clearInterval(watchdog);
  }
}

function report(sender: SenderKind, got: number, bad: number, senderExit: number, stream: ZcrxStream, t0: number) {
  const stats = stream.receiver.stats.snapshot();
  const r = {
    sender,
    kernel: kernelRelease(),
    bytes: got,
    first_mismatch: bad,
    sender_exit: senderExit,
    live_after: stream.receiver.live,
    stats,
    elapsed_ms: Math.round(performance.now() - t0),
  };
  console.log(`zcrx-vm-async: ${JSON.stringify(r)}`);
  return r;
}

function expectBatched(r: ReturnType<typeof report>, total: number): void {
  expect(r.sender_exit).toBe(0);
  expect(r.bytes).toBe(total);
  expect(r.first_mismatch).toBe(-1);
  expect(r.live_after).toBe(0);
  const s = r.stats as { [k: string]: number };
  expect(s.released).toBe(s.chunks!);
  expect(s.published).toBe(s.released!);
  expect(s.published!).toBeGreaterThanOrEqual(s.publishes! * RELEASES_PER_PUBLISH_GOAL);
  expect(s.flushes!).toBeLessThanOrEqual(s.publishes!);
}

function spawnSender(port: number, total: number): { exited: Promise<number>; exitCode(): number | null } {
  const p = Bun.spawn(
    [process.execPath, join(import.meta.dir, "fixtures", "zcrx-sender.ts"), String(port), String(total)],
    { stdout: "inherit", stderr: "inherit" },
  );
  return { exited: p.exited, exitCode: () => p.exitCode };
}

function ringSender(
  ring: AsyncRing,
  port: number,
  total: number,
): { exited: Promise<number>; exitCode(): number | null } {
  let code: number | null = null;
  const exited = (async () => {
    const client = await ring.connect({ host: "127.0.0.1", port });
    for (let at = 0; at < total; at += 256 * 1024)
      await client.send(patternAt(at, Math.min(256 * 1024, total - at)).slice()).released;
    await client.end();
    await client.close();
    return (code = 0);
  })();
  return { exited, exitCode: () => code };
}

describe("async recvZc() with ZCRX_REG_NODEV over loopback TCP", () => {
  testIf(
    gate,
    "release-each, sender on the same ring: every byte in order, >= 32 releases per publish, flushes <= publishes",
    async () => {
      const total = 8 * MiB;
      expectBatched(await receiveFromSender(total, MiB, "ring"), total);
    },
    300_000,
  );

  testIf(
    gate,
    "release-each, node:net sender in another process: every byte in order, >= 32 releases per publish, flushes <= publishes",
    async () => {
      const total = 16 * MiB;
      expectBatched(await receiveFromSender(total, MiB, "process"), total);
    },
    300_000,
  );
});
