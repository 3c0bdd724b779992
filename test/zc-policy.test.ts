// AdaptivePolicy (src/zc/policy.ts) on a simulated socket: the test owns both clocks (wall and
// CPU) and the rate each kind achieves, so every outcome is exact and nothing here times the
// machine. The sender's side of the interface is played by `Sim`: one send per operation, written
// (stampWrite), completed after bytes / rate ms (observeSent), and notified (observeNotification).
import { test, expect } from "bun:test";
import { AdaptivePolicy, sizeClass, type AdaptivePolicyOptions } from "../src/zc/policy.ts";
import { ZcStats } from "../src/zc/stats.ts";
import { UringError } from "../src/error.ts";

interface Model {
  /** MB/s each kind moves (bytes per ms / 1000). */
  zcRate: number;
  copyRate: number;
  /** CPU ms per byte (default: the service time, a sender busy all the time). */
  zcCpu?: number;
  copyCpu?: number;
  /** What REPORT_USAGE says of each SEND_ZC. */
  copied: boolean;
  /** The sender's own ms of work after a SEND_ZC's completion (its notification and release),
   * before the next write. */
  zcAfterMs?: number;
}

class Sim {
  t = 1000;
  cpu = 0;
  clockReads = 0;
  cpuReads = 0;
  readonly stats = new ZcStats();
  readonly policy: AdaptivePolicy;
  /** Sends and bytes per kind. */
  zcSends = 0;
  copySends = 0;
  /** Added to the next timed operation's service time once (a stall of the machine). */
  stallMs = 0;

  constructor(
    public model: Model,
    o: Partial<AdaptivePolicyOptions> = {},
  ) {
    this.policy = new AdaptivePolicy(
      this.stats,
      { threshold: 2048, reportUsage: true, window: 16, trialMs: 20, warmupMs: 50, remeasureMs: 1000, ...o },
      "test",
      () => {
        this.clockReads++;
        return this.t;
      },
      () => {
        this.cpuReads++;
        return this.cpu;
      },
    );
  }

  /** One send of `bytes` as its own operation. */
  send(bytes: number): boolean {
    const p = this.policy,
      m = this.model;
    const zc = p.chooseZeroCopy(bytes);
    const writtenAt = p.stampWrite(bytes);
    const msPerByte = 1 / ((zc ? m.zcRate : m.copyRate) * 1000);
    this.t += bytes * msPerByte + this.stallMs;
    if (writtenAt > 0) this.stallMs = 0;
    this.cpu += bytes * ((zc ? m.zcCpu : m.copyCpu) ?? msPerByte);
    if (writtenAt > 0) p.observeSent(bytes, zc, bytes, 1, writtenAt);
    if (zc) {
      this.zcSends++;
      p.observeNotification(bytes, m.copied, 1);
      this.t += m.zcAfterMs ?? 0;
    } else this.copySends++;
    return zc;
  }

  /** Send `bytes` payloads back to back for `ms` of simulated time. */
  run(ms: number, bytes = 65536): void {
    const end = this.t + ms;
    while (this.t < end) this.send(bytes);
  }

  entry(bytes = 65536) {
    return this.policy.sizeClassOf(bytes)!;
  }
}

test("copied SEND_ZC that moves more bytes wins: the usage report is evidence, not the verdict", () => {
  // Loopback's case: every notification says "copied", yet SEND_ZC is 1.8x as fast.
  const sim = new Sim({ zcRate: 180, copyRate: 100, copied: true });
  sim.run(2000);
  const e = sim.entry();
  expect(e.decision).toBe("zc");
  expect(e.measuring).toBe(false);
  expect(e.measurements).toBeGreaterThanOrEqual(1);
  expect(e.zcMBs / e.copyMBs).toBeCloseTo(1.8, 5);
  expect(e.reason).toContain("sends of 64 KiB to under 128 KiB use SEND_ZC (throughput)");
  expect(e.reason).toContain("SEND_ZC ran at 1.80x SEND's rate");
  expect(e.reason).toContain("the kernel reported 100% of SEND_ZC sends copied");
  expect(sim.stats.decision).toBe("zc");
  expect(sim.stats.reason).toBe(e.reason);
});

test("SEND wins where it moves more bytes, with zero-copy reported or not", () => {
  for (const copied of [true, false]) {
    const sim = new Sim({ zcRate: 60, copyRate: 100, copied });
    sim.run(2000);
    const e = sim.entry();
    expect(e.decision).toBe("copy");
    expect(e.reason).toContain("use SEND (throughput)");
    expect(e.reason).toContain(`the kernel reported ${copied ? 100 : 0}% of SEND_ZC sends copied`);
  }
  const unreported = new Sim({ zcRate: 60, copyRate: 100, copied: false }, { reportUsage: false });
  unreported.run(2000);
  expect(unreported.entry().decision).toBe("copy");
  expect(unreported.entry().reason).toContain("SEND_ZC's usage is not reported");
});

test("the sender's own work between operations counts: SEND_ZC that completes sooner but costs more to reap loses", () => {
  // A 64 KiB SEND_ZC completes in 0.44 ms against SEND's 0.66, but its notification and release
  // (or the wait for them before the buffer can go out again) take the sender 0.5 ms more: 0.94 ms
  // per send in all.
  const sim = new Sim({ zcRate: 150, copyRate: 100, zcAfterMs: 0.5, copied: true });
  sim.run(3000);
  expect(sim.entry().decision).toBe("copy");
  expect(sim.entry().reason).toMatch(/SEND_ZC ran at 0\.7\dx SEND's rate/);
  // Idle time is not work: with 30 ms between sends, each operation is charged from its write.
  const idle = new Sim({ zcRate: 150, copyRate: 100, copied: true });
  const end = idle.t + 60_000;
  while (idle.t < end) {
    idle.send(65536);
    idle.t += 30;
  }
  expect(idle.entry().decision).toBe("zc");
  expect(idle.entry().reason).toContain("SEND_ZC ran at 1.50x SEND's rate");
});

test("a new class warms up on SEND_ZC, then measures in ABBA order from the kind not in use", () => {
  const sim = new Sim({ zcRate: 100, copyRate: 100, copied: true }, { warmupMs: 50, rounds: 2 });
  const kinds: string[] = [];
  let last = "";
  // Warm-up: SEND_ZC for 50 ms of simulated time (the clock read every 16 sends).
  while (sim.t < 1000 + 50) expect(sim.send(65536)).toBe(true);
  while (sim.entry().measurements === 0) {
    const k = sim.send(65536) ? "zc" : "copy";
    if (k !== last) kinds.push(k);
    last = k;
  }
  // The warm-up's SEND_ZC runs on into the first trial (the first choice is SEND, so trials start
  // from SEND_ZC): Z C | C Z, shown as runs of one kind.
  expect(kinds).toEqual(["zc", "copy", "zc"]);
  expect(sim.entry().pairs).toBe(2);
});

test("throughput within the margin: CPU per byte decides, and with both level the class keeps SEND", () => {
  // Same rate (a receiver-bound stream), but SEND costs the sender 1.5x the CPU per byte.
  const cpuBound = new Sim({ zcRate: 100, copyRate: 100, zcCpu: 4e-6, copyCpu: 6e-6, copied: true });
  cpuBound.run(2000);
  expect(cpuBound.entry().decision).toBe("zc");
  expect(cpuBound.entry().reason).toContain("(throughput within 3%, CPU per byte)");
  expect(cpuBound.entry().reason).toContain("SEND's CPU per byte 1.50x SEND_ZC's");
  // Level on both: the first choice (SEND, which pins nothing) stays.
  const level = new Sim({ zcRate: 100, copyRate: 101, zcCpu: 5e-6, copyCpu: 5e-6, copied: true });
  level.run(5000);
  expect(level.entry().decision).toBe("copy");
  expect(level.entry().reason).toContain("(both within 3%, kept)");
});

test("CPU time that other work shared (the thread idle or busy elsewhere mid-trial) is not used", () => {
  // Long pauses between sends: wall time far beyond the charged time, so CPU per byte is not
  // measurable and a throughput tie keeps SEND.
  const sim = new Sim({ zcRate: 100, copyRate: 100, zcCpu: 1e-6, copyCpu: 9e-6, copied: true });
  const end = sim.t + 60_000;
  while (sim.t < end) {
    sim.send(65536);
    sim.t += 30;
  }
  expect(sim.entry().measurements).toBeGreaterThan(0);
  expect(sim.entry().decision).toBe("copy");
  expect(sim.entry().reason).not.toContain("CPU per byte");
});

test("conditions change: a settled class finds the new winner within seconds, and steady probing costs little", () => {
  const sim = new Sim({ zcRate: 100, copyRate: 180, copied: true });
  sim.run(20_000);
  expect(sim.entry().decision).toBe("copy");
  // Steady state: probes space out while SEND leads clearly; the losing kind's share of the sends
  // over the next minute is small.
  const zc0 = sim.zcSends,
    copy0 = sim.copySends;
  sim.run(60_000);
  const loserShare = (sim.zcSends - zc0) / (sim.zcSends - zc0 + sim.copySends - copy0);
  expect(loserShare).toBeGreaterThan(0);
  expect(loserShare).toBeLessThan(0.02);
  // The route changes: SEND_ZC is now twice as fast.
  sim.model = { zcRate: 200, copyRate: 100, copied: true };
  const changedAt = sim.t;
  while (sim.entry().decision !== "zc" && sim.t < changedAt + 30_000) sim.run(10);
  expect(sim.entry().decision).toBe("zc");
  // The longest probe interval is 4 s; two surprising probes and a measurement follow it.
  expect(sim.t - changedAt).toBeLessThan(4000 + 1000);
  expect(sim.stats.switches).toBeGreaterThanOrEqual(1);
  // And back again.
  sim.model = { zcRate: 100, copyRate: 200, copied: true };
  const backAt = sim.t;
  while (sim.entry().decision !== "copy" && sim.t < backAt + 30_000) sim.run(10);
  expect(sim.entry().decision).toBe("copy");
  expect(sim.t - backAt).toBeLessThan(4000 + 1000);
});

test("one stalled trial does not flip the class or restart its measurement", () => {
  const sim = new Sim({ zcRate: 100, copyRate: 180, copied: true });
  sim.run(10_000);
  const e = sim.entry();
  expect(e.decision).toBe("copy");
  const measured = e.measurements;
  // Wait for the next probe, then stall its SEND trial once by 200 ms: that pair says SEND_ZC is
  // far faster. The confirming probe right after it does not.
  while (!e.measuring) sim.send(65536);
  while (e.measuring && sim.policy.chooseZeroCopy(65536)) sim.send(65536);
  // (The trial's first completion only starts its clocks.)
  for (let i = 0; i < 3; i++) expect(sim.send(65536)).toBe(false);
  sim.stallMs = 200;
  while (e.measuring) sim.send(65536);
  expect(e.decision).toBe("copy");
  // The stalled probe and the confirming one joined the class's pairs; a fresh measurement would
  // have kept only the last two and added its own four.
  expect(e.pairs).toBe(8);
  sim.run(3000);
  expect(e.decision).toBe("copy");
  expect(e.reason).not.toContain("measuring afresh");
  expect(sim.stats.switches).toBe(1); // the class's first decision only (warm-up said zc)
  expect(e.measurements).toBeGreaterThan(measured);
});

test("a change in the kernel's copied share starts a fresh measurement", () => {
  const sim = new Sim({ zcRate: 100, copyRate: 180, copied: true });
  sim.run(10_000);
  expect(sim.entry().decision).toBe("copy");
  // The route moves to a NIC that sends from the pages: zero-copy, and now faster.
  sim.model = { zcRate: 300, copyRate: 180, copied: false };
  let fresh = false;
  const at = sim.t;
  while (sim.entry().decision !== "zc" && sim.t < at + 30_000) {
    sim.send(65536);
    if (sim.entry().reason.startsWith("measuring afresh: the kernel's copied share moved from 100% to 0%"))
      fresh = true;
  }
  expect(fresh).toBe(true);
  expect(sim.entry().decision).toBe("zc");
  expect(sim.entry().reason).toContain("the kernel reported 0% of SEND_ZC sends copied");
});

test("size classes decide on their own; payloads below the threshold are always SEND and make no class", () => {
  const sim = new Sim({ zcRate: 100, copyRate: 100, copied: true }, { threshold: 4096 });
  // Rates per size: small payloads copy faster, large ones go faster zero-copy.
  const small = 8192,
    large = 262144;
  const end = sim.t + 4000;
  while (sim.t < end) {
    sim.model = { zcRate: 60, copyRate: 100, copied: true };
    sim.send(small);
    sim.model = { zcRate: 200, copyRate: 100, copied: true };
    sim.send(large);
    expect(sim.send(1000)).toBe(false);
  }
  expect(sim.policy.sizeClassOf(small)!.decision).toBe("copy");
  expect(sim.policy.sizeClassOf(large)!.decision).toBe("zc");
  expect(sim.policy.sizeClassOf(1000)).toBeUndefined();
  expect(sim.stats.sizeClasses.map((k) => [k.minBytes, k.maxBytes])).toEqual([
    [8192, 16383],
    [262144, 524287],
  ]);
  expect(sizeClass(8192)).toBe(13);
  expect(sizeClass(2 ** 40)).toBe(31);
});

test("an empty send is SEND and makes no size class, even with threshold 0; payloads from 2 GiB share the last class", () => {
  const sim = new Sim({ zcRate: 300, copyRate: 100, copied: false }, { threshold: 0 });
  for (let i = 0; i < 100; i++) {
    expect(sim.policy.chooseZeroCopy(0)).toBe(false);
    expect(sim.policy.stampWrite(0)).toBe(0);
  }
  sim.policy.observeNotification(0, true, 1);
  expect(sim.stats.sizeClasses).toEqual([]);
  expect(sim.policy.sizeClassOf(0)).toBeUndefined();
  sim.run(2000, 4096);
  expect(sim.policy.sizeClassOf(4096)!.decision).toBe("zc");
  expect(sizeClass(2 ** 31)).toBe(31);
  expect(sizeClass(2 ** 33 + 5)).toBe(31);
  expect(sim.policy.chooseZeroCopy(2 ** 33)).toBe(true);
  expect(sim.stats.sizeClasses.map((k) => [k.minBytes, k.maxBytes])).toEqual([
    [4096, 8191],
    [2 ** 31, Number.MAX_SAFE_INTEGER],
  ]);
});

test("refuseZeroCopy: every send is SEND from then on, timed by nothing", () => {
  const sim = new Sim({ zcRate: 300, copyRate: 100, copied: false });
  sim.run(2000);
  expect(sim.entry().decision).toBe("zc");
  sim.policy.refuseZeroCopy("the kernel refused SEND_ZC on this socket (EOPNOTSUPP)");
  expect(sim.stats.decision).toBe("copy");
  expect(sim.stats.reason).toBe("the kernel refused SEND_ZC on this socket (EOPNOTSUPP)");
  for (let i = 0; i < 5000; i++) {
    expect(sim.policy.chooseZeroCopy(65536)).toBe(false);
    expect(sim.policy.stampWrite(65536)).toBe(0);
  }
});

test("a settled class reads the wall clock once per `window` sends at most, and the CPU clock only at trial edges", () => {
  const sim = new Sim({ zcRate: 100, copyRate: 180, copied: true }, { window: 64, probeEvery: 1024 });
  sim.run(20_000);
  const e = sim.entry();
  expect(e.measuring).toBe(false);
  // Settled, between probes: count clock reads over sends that start no probe.
  const reads0 = sim.clockReads,
    cpu0 = sim.cpuReads;
  const m0 = e.measurements;
  let sends = 0;
  while (!e.measuring && sends < 5000) {
    sim.send(65536);
    sends++;
  }
  // The send that starts a probe reads it three times (the check, its write stamp, its completion).
  expect(sim.clockReads - reads0).toBeLessThanOrEqual(Math.ceil(sends / 64) + 3);
  expect(e.measuring).toBe(true);
  // None while settled; the last send began the probe's first trial, which started its clocks.
  expect(sim.cpuReads - cpu0).toBe(1);
  // A probe: two trials, each reading the CPU clock twice.
  while (e.measurements === m0) sim.send(65536);
  expect(sim.cpuReads - cpu0).toBe(4);
});

test("options are validated with the name and the value", () => {
  const bad: [Partial<AdaptivePolicyOptions>, RegExp][] = [
    [{ window: 0 }, /window must be a positive integer, got 0/],
    [{ window: 1.5 }, /window must be a positive integer/],
    [{ probeEvery: -1 }, /probeEvery must be a positive integer/],
    [{ rounds: 0 }, /rounds must be 1\.\.64/],
    [{ rounds: 65 }, /rounds must be 1\.\.64/],
    [{ margin: -0.1 }, /margin must be 0\.\.10/],
    [{ margin: Number.NaN }, /margin must be 0\.\.10/],
    [{ copiedRatio: 0 }, /copiedRatio must be in \(0, 1\]/],
    [{ copiedRatio: 1.5 }, /copiedRatio must be in \(0, 1\]/],
    [{ trialMs: -1 }, /trialMs must be 0\.\.3600000 ms, got -1/],
    [{ warmupMs: Number.POSITIVE_INFINITY }, /warmupMs must be 0\.\.3600000 ms/],
    [{ remeasureMs: Number.NaN }, /remeasureMs must be 0\.\.3600000 ms/],
    [{ remeasureMs: 3_600_001 }, /remeasureMs must be 0\.\.3600000 ms/],
  ];
  for (const [o, msg] of bad) {
    let err: unknown;
    try {
      new AdaptivePolicy(new ZcStats(), { threshold: 2048, reportUsage: true, ...o }, "ZcSender");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UringError);
    expect((err as UringError).code).toBe("EINVAL");
    expect((err as UringError).message).toMatch(msg);
  }
});

test("the default CPU clock reads this thread's CPU time", async () => {
  const { threadCpuMs } = await import("../src/zc/policy.ts");
  const a = threadCpuMs();
  let x = 0;
  for (let i = 0; i < 2e7; i++) x += i & 1;
  const b = threadCpuMs();
  expect(x).toBe(1e7);
  expect(Number.isFinite(a)).toBe(true);
  expect(b).toBeGreaterThan(a);
});
