// The loop driver: completions arrive inside Bun's event loop while timers keep running, one
// submit per turn, DEFER_TASKRUN rings, handler errors, close, and an idle driver that lets the
// process exit.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { addressOf, c } from "../ffi/index.ts";
import { Ring } from "../src/ring/ring.ts";
import { LoopDriver } from "../src/loop/index.ts";
import { prepNop, prepRecv } from "../src/ops/prep.ts";
import { IORING_SETUP_DEFER_TASKRUN } from "../src/abi/setup.ts";
import { tcpListen, tcpConnect, tcpAccept, closeQuietly } from "../src/sync.ts";
import { UringError } from "../src/error.ts";
import { needSetupFlag, testIf } from "./helpers.ts";

const BUN = process.execPath;
/** Bound per test, generous for the VM tier (an emulated CPU). */
const LOOP_TIMEOUT_MS = 30_000;

function nop(ring: Ring, handler: (data: unknown, res: number) => void): void {
  const slot = ring.getSqe();
  prepNop(ring.sq, slot);
  ring.track(slot, handler, null);
}

/** A connected pair of TCP sockets on 127.0.0.1 (made with libc), for receives that wait. */
function socketPair(ring: Ring): { a: number; b: number; close(): void } {
  const l = tcpListen(ring, { host: "127.0.0.1", port: 0, via: "libc" });
  const a = tcpConnect(ring, { host: "127.0.0.1", port: l.address.port, via: "libc" });
  const b = tcpAccept(ring, l.fd, { via: "libc" });
  closeQuietly(l.fd);
  return { a, b, close: () => (closeQuietly(a), closeQuietly(b)) };
}

/** Arm a RECV on `fd`, resolve with its result; the buffer is held by the op table. */
function recvOnce(ring: Ring, driver: LoopDriver, fd: number, buf: Uint8Array): Promise<number> {
  return new Promise<number>((resolve) => {
    const ud = ring.ops.add((_: unknown, res: number) => resolve(res), null, buf);
    const slot = ring.getSqe();
    prepRecv(ring.sq, slot, fd, addressOf(buf), buf.length, 0);
    ring.setUserData(slot, ud);
    driver.kick();
  });
}

async function timersKeepFiring(deferTaskrun: boolean): Promise<void> {
  const ring = Ring.create({ entries: 32, deferTaskrun });
  const driver = new LoopDriver(ring, { spinUs: 0 });
  const pair = socketPair(ring);
  try {
    const buf = new Uint8Array(64);
    const pending = recvOnce(ring, driver, pair.b, buf);
    // The peer's bytes are written from inside a timer callback, after three ticks: the receive
    // can only complete if timers run while it waits.
    let ticks = 0;
    const msg = new TextEncoder().encode("tick-tock");
    const iv = setInterval(() => {
      if (++ticks === 3) c.send(pair.a, msg, msg.length, 0);
    }, 2);
    const res = await pending;
    clearInterval(iv);
    expect(ticks).toBeGreaterThanOrEqual(3);
    expect(res).toBe(msg.length);
    expect(new TextDecoder().decode(buf.subarray(0, res))).toBe("tick-tock");
    expect(ring.ops.inflight).toBe(0);
    expect(driver.stats.wakes + driver.stats.polls).toBeGreaterThan(0);
  } finally {
    driver.close();
    ring.close();
    pair.close();
  }
}

describe("LoopDriver", () => {
  test("a receive waits without blocking: timers keep firing and complete it", () => timersKeepFiring(false));

  testIf(
    needSetupFlag(IORING_SETUP_DEFER_TASKRUN, "DEFER_TASKRUN", "6.1"),
    "DEFER_TASKRUN ring: the wake-up enters with GETEVENTS and completions arrive",
    () => timersKeepFiring(true),
  );

  test(
    "the eventfd is off while the driver polls the CQ and on again once it waits on it",
    async () => {
      const ring = Ring.create({ entries: 32 });
      const driver = new LoopDriver(ring, { spinUs: 1000 });
      const pair = socketPair(ring);
      try {
        const msg = new TextEncoder().encode("ping");
        const first = recvOnce(ring, driver, pair.b, new Uint8Array(16));
        await Bun.sleep(1);
        c.send(pair.a, msg, msg.length, 0);
        expect(await first).toBe(msg.length);
        // The completion started a poll window: the CQ is looked at without a signal.
        expect(ring.eventfdEnabled).toBe(false);
        const second = recvOnce(ring, driver, pair.b, new Uint8Array(16));
        for (let i = 0; i < 400 && !ring.eventfdEnabled; i++) await Bun.sleep(5);
        expect(ring.eventfdEnabled).toBe(true);
        // Waiting on the eventfd again: the next completion wakes the driver through it.
        const wakes = driver.stats.wakes;
        c.send(pair.a, msg, msg.length, 0);
        expect(await second).toBe(msg.length);
        expect(driver.stats.wakes).toBeGreaterThan(wakes);
        expect(ring.ops.inflight).toBe(0);
      } finally {
        driver.close();
        ring.close();
        pair.close();
      }
    },
    LOOP_TIMEOUT_MS,
  );

  test(
    "operations prepared in one turn go out in one submit",
    async () => {
      const ring = Ring.create({ entries: 64 });
      const driver = new LoopDriver(ring, { spinUs: 0 });
      try {
        let done = 0;
        const all = new Promise<void>((resolve) => {
          for (let i = 0; i < 20; i++)
            nop(ring, () => {
              if (++done === 20) resolve();
            });
          for (let i = 0; i < 20; i++) driver.kick();
        });
        expect(ring.pending).toBe(20);
        await all;
        expect(done).toBe(20);
        expect(driver.stats.submits).toBe(1);
        expect(ring.ops.inflight).toBe(0);
      } finally {
        driver.close();
        ring.close();
      }
    },
    LOOP_TIMEOUT_MS,
  );

  test(
    "with polling enabled, completions still arrive and the poll ends when idle",
    async () => {
      const ring = Ring.create({ entries: 32 });
      const driver = new LoopDriver(ring, { spinUs: 200 });
      const pair = socketPair(ring);
      try {
        for (let round = 0; round < 50; round++) {
          const buf = new Uint8Array(8);
          const p = recvOnce(ring, driver, pair.b, buf);
          const msg = Uint8Array.of(round);
          setImmediate(() => c.send(pair.a, msg, 1, 0));
          expect(await p).toBe(1);
          expect(buf[0]).toBe(round);
        }
        expect(ring.ops.inflight).toBe(0);
      } finally {
        driver.close();
        ring.close();
        pair.close();
      }
    },
    LOOP_TIMEOUT_MS,
  );

  test(
    "an exception from a handler goes to onError and the driver keeps delivering",
    async () => {
      const ring = Ring.create({ entries: 32 });
      const errors: unknown[] = [];
      const driver = new LoopDriver(ring, { spinUs: 0, onError: (e) => errors.push(e) });
      try {
        nop(ring, () => {
          throw new Error("handler failure");
        });
        driver.kick();
        await new Promise<void>((resolve) => setImmediate(resolve));
        expect(errors.length).toBe(1);
        expect((errors[0] as Error).message).toBe("handler failure");
        const res = await new Promise<number>((resolve) => {
          nop(ring, (_d, r) => resolve(r));
          driver.kick();
        });
        expect(res).toBe(0);
        expect(ring.ops.inflight).toBe(0);
      } finally {
        driver.close();
        ring.close();
      }
    },
    LOOP_TIMEOUT_MS,
  );

  test(
    "close() stops the driver: kick() does nothing afterwards, and a second close is a no-op",
    () => {
      const ring = Ring.create({ entries: 8 });
      const driver = new LoopDriver(ring);
      driver.close();
      expect(driver.isClosed).toBe(true);
      nop(ring, () => {});
      driver.kick();
      expect(ring.pending).toBe(1);
      driver.close();
      ring.close();
    },
    LOOP_TIMEOUT_MS,
  );

  test(
    "bad options are refused before anything is set up",
    () => {
      const ring = Ring.create({ entries: 8 });
      try {
        expect(() => new LoopDriver(ring, { spinUs: -1 })).toThrow(UringError);
        expect(() => new LoopDriver(ring, { spinUs: Number.NaN })).toThrow(/spinUs/);
      } finally {
        ring.close();
      }
      expect(() => new LoopDriver(ring)).toThrow(/closed/);
    },
    LOOP_TIMEOUT_MS,
  );

  test(
    "a driver that is never closed does not keep the process alive once nothing is in flight",
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "bun-uring-loop-"));
      try {
        const script = join(dir, "idle.ts");
        const root = join(import.meta.dir, "..");
        writeFileSync(
          script,
          `import { Ring } from ${JSON.stringify(join(root, "src/ring/ring.ts"))};
import { LoopDriver } from ${JSON.stringify(join(root, "src/loop/index.ts"))};
import { prepNop } from ${JSON.stringify(join(root, "src/ops/prep.ts"))};
const ring = Ring.create({ entries: 8 });
const driver = new LoopDriver(ring, { spinUs: 100 });
const slot = ring.getSqe();
prepNop(ring.sq, slot);
ring.track(slot, () => console.log("nop done"), null);
driver.kick();
// Neither the driver nor the ring is closed: the process must still exit once nothing is in flight.
`,
        );
        const proc = Bun.spawn([BUN, script], { stdout: "pipe", stderr: "pipe" });
        const killer = setTimeout(() => proc.kill(), 10_000);
        const code = await proc.exited;
        clearTimeout(killer);
        const out = await new Response(proc.stdout).text();
        expect(out.trim()).toBe("nop done");
        expect(proc.signalCode).toBeNull();
        expect(code).toBe(0);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    LOOP_TIMEOUT_MS,
  );
});
