// Hostile and careless use of the async API, each scenario in its own process
// (test/fixtures/hostile/async.ts): teardown with a full op table, an oversized send bound, the
// inner Ring closed directly, buffers transferred mid-send, fds that are not the ring's to own.
import { describe, expect, test, setDefaultTimeout } from "bun:test";
import { expectClean, runScenario } from "./fixtures/hostile/spawn.ts";

// Each scenario is a process of its own; under the VM tier's emulation (TCG) one can take far
// longer than bun test's 5 s default, which would kill it half way.
setDefaultTimeout(120_000);

describe("async API under hostile use (each in its own process)", () => {
  test("close() with every op slot in flight (receives, and connects nobody answers in the reserve) settles everything and leaks no fd", () => {
    const r = expectClean(runScenario("async.ts", "close-full-table"));
    expect(r.full).toBe(0);
    expect(r.sockets).toBeGreaterThan(50);
    expect(r.outcomes).toEqual(["resolved"]);
    // Connects still waiting when the ring closes are rejected (cancelled, or refused once the
    // listener is gone); any that got through were closed with the ring.
    for (const o of r.connects) expect(o).toMatch(/^(resolved|rejected E[A-Z]+)$/);
    expect(r.connects.some((o: string) => o.startsWith("rejected"))).toBe(true);
    expect(r.fdsLeft).toBe(0);
    expect(r.closed).toBe(true);
  });

  test("receiving sockets cannot take the op-table entries sends need: an echo server past its table answers who it can and refuses the rest with EBUSY", () => {
    const r = expectClean(runScenario("async.ts", "receives-fill-table", 60_000));
    // Every client is either answered or refused; none waits forever.
    expect(r.answered).toBeGreaterThan(0);
    expect(r.answered).toBe(r.served);
    expect(r.answered + r.refusals.length).toBe(100);
    for (const m of r.refusals) expect(m).toMatch(/^IORING_OP_RECV: EBUSY .*kept for sends, connects and cancels/);
  });

  test("a peer that floods an echo server and never reads cannot take the receive pool from the others", () => {
    const r = expectClean(runScenario("async.ts", "flood-no-read", 60_000));
    // The flooder holds at most its quota (an eighth of the pool, plus what one batch of CQEs
    // delivered before the cap, on kernels without the byte limit); the other peer is answered.
    expect(r.quota).toBe(r.pool / 8);
    expect(r.out).toBeLessThan(r.pool);
    expect(r.rounds).toBeGreaterThan(0);
  });

  test("fds running out under a burst of connections does not end `for await (const sock of listener)`: it waits and serves the next", () => {
    const r = expectClean(runScenario("async.ts", "accept-emfile", 60_000));
    expect(r.acceptErrors).toBeGreaterThan(0);
    expect(r.last).toBe("EMFILE");
    expect(r.echoed).toBe("still here");
    expect(r.loop).toBe("ended");
  });

  test("maxInflightSends beyond the op table is refused at openRing, not inside a completion handler", () => {
    const r = expectClean(runScenario("async.ts", "huge-inflight-sends"));
    expect(r.errors[0]).toMatch(/maxInflightSends must be an integer 1\.\.8192/);
    expect(r.errors[1]).toMatch(/maxInflightSends/);
    expect(r.got).toBe(2);
  });

  test("closing asyncRing.ring directly settles waiting accepts, receives and queued sends; the process exits", () => {
    const r = expectClean(runScenario("async.ts", "close-inner-ring", 30_000));
    expect(r.accept).toMatch(/^rejected /);
    expect(r.read).toMatch(/^(rejected |resolved)/);
    expect(r.sends.every((s: string) => s === "resolved" || s.startsWith("rejected "))).toBe(true);
    expect(r.closing).toBe(true);
  });

  test("a buffer transferred while its send waits is never sent; transferred before send() is refused", () => {
    const r = expectClean(runScenario("async.ts", "transfer-async"));
    expect(r.udp).toBe("rejected EINVAL");
    expect(r.early).toMatch(/detached/);
    expect(r.tcp).toMatch(/^rejected E/);
    expect(r.peerBytes).toBe(0);
    expect(r.datagrams).toBe(0);
  });

  test("a resizable buffer shrunk after send() fails that send before its SQE is written (UDP and TCP alike, in the send queue); SharedArrayBuffer views send", () => {
    const r = expectClean(runScenario("async.ts", "resize-async"));
    expect(r.udp).toBe("rejected EINVAL");
    expect(r.sab).toBe("resolved");
    expect(r.tcp).toEqual(["resolved", "rejected EINVAL"]);
    expect(r.peerBytes).toBe(1 << 20);
    expect(r.datagrams).toEqual([32]);
  });

  test("adoptTcp refuses fds that are not TCP sockets or already belong to the ring", () => {
    const r = expectClean(runScenario("async.ts", "adopt-wrong-fds"));
    expect(r.errors[0]).toMatch(/fd 0 is not a socket/);
    expect(r.errors[1]).toMatch(/not a TCP socket/);
    expect(r.errors[2]).toMatch(/already belongs/);
    expect(r.errors[3]).toMatch(/listener/);
    expect(r.errors[4]).toMatch(/integer/);
    expect(r.errors[5]).toMatch(/integer/);
  });
});
