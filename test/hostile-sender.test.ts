// Hostile use of ZcSender, RecvLoop, FixedBufferPool and registered buffers, each scenario in its
// own process (test/fixtures/hostile/sender.ts). Traffic stays on loopback.
import { describe, expect, test, setDefaultTimeout } from "bun:test";
import { expectClean, runScenario } from "./fixtures/hostile/spawn.ts";

// Each scenario is a process of its own; under the VM tier's emulation (TCG) one can take far
// longer than bun test's 5 s default, which would kill it half way.
setDefaultTimeout(120_000);

describe("senders and receivers under hostile use (each in its own process)", () => {
  for (const mode of ["copy", "zc"]) {
    test(`${mode}: a buffer transferred while its send is queued is never sent; the send fails with EFAULT`, () => {
      const r = expectClean(runScenario("sender.ts", `transfer-queued-${mode}`));
      expect(r.peerBytes).toBe(0);
      expect(r.sent).toEqual([
        [1, -14],
        [2, -125],
      ]);
      expect(r.lastError).toContain("ZcSender.send: EFAULT");
    });
  }

  test("datagrams: only the send whose buffer was transferred fails", () => {
    const r = expectClean(runScenario("sender.ts", "transfer-queued-dgram"));
    expect(r).toEqual({ sent: [-14, 256], datagrams: [256] });
  });

  test("onSent / onReleased that throw neither wedge the sender nor lose a release", () => {
    const r = expectClean(runScenario("sender.ts", "throwing-callbacks"));
    expect(r.released).toBe(15);
    expect(r.inflight).toBe(0);
    expect(r.errors[0]).toBe("onSent throws for 1");
  });

  test("after the ring closed: send() holds nothing and throws, a new sender or pool is refused", () => {
    const r = expectClean(runScenario("sender.ts", "after-close"));
    expect(r.errors).toEqual([
      "ZcSender.send: EBADF (the ring is closed)",
      "ZcSender: EBADF (the ring is closed)",
      "FixedBufferPool.create: EBADF (the ring is closed)",
    ]);
  });

  test("a RecvLoop whose onData throws keeps receiving", () => {
    const r = expectClean(runScenario("sender.ts", "recvloop-throws"));
    expect(r).toEqual({ bytes: 300, errors: ["onData throws once"] });
  });

  test("oversized pools, wrong fds, a non-Ring, oversized or non-function RecvLoop options are refused", () => {
    const r = expectClean(runScenario("sender.ts", "bad-options"));
    expect(r.errors.length).toBe(9);
    // A wrong type is named as such, not printed as if it were the value.
    expect(r.errors[1]).toContain('got "3" (a string)');
  });

  test("a registered buffer whose memory was detached no longer hands out its address", () => {
    const r = expectClean(runScenario("sender.ts", "registered-detached"));
    expect(r.before).toBe(true);
    expect(r.error).toContain("BufferTable.address: EINVAL");
  });
});
