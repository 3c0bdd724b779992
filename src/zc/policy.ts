// The adaptive policy of ZcSender: for each size class of payload (powers of two), whether a send
// goes out as SEND_ZC or SEND, and the measurements behind that choice.
//
// Below `threshold` bytes a send is always SEND. Each class above it starts in a warm-up on
// SEND_ZC. With REPORT_USAGE, a measurement opens with a usage probe: a window of SEND_ZC sends
// whose notifications say whether the kernel copied. When copies dominate (`copiedRatio`) the
// class settles on SEND at once, since a copying SEND_ZC does SEND's copy plus pinning and a
// notification; it probes again after `probeEvery` sends and `remeasureMs`, the wait doubling (up
// to 32 times) while the kernel keeps copying. Zero-copy confirmed for a class of 16 KiB or more
// settles it on SEND_ZC. Otherwise (zero-copy below 16 KiB, or usage not reported, then after
// `warmupMs`) SEND_ZC and SEND alternate in `rounds` pairs of trial windows (each at least `window`
// sends and `trialMs`), and the other kind replaces the current choice only when its pooled rate
// beats it by `margin` and it won most pairs; the first choice starts from SEND, which pins
// nothing.
//
// The sender asks `chooseZeroCopy(bytes)` for each send, stamps each operation it writes with
// `stampWrite(bytes)`, and reports each operation's first CQE (`observeSent`) and notification
// (`observeNotification`). Time comes from the clock given to the constructor, read only while a
// class is warming up, measuring or due for a new measurement, so a settled class costs one
// decrement per send.
import { invalidArgument, shown } from "../error.ts";
import { ZcSizeClass, type ZcStats } from "./stats.ts";

export interface AdaptivePolicyOptions {
  /** Payloads below this many bytes always go out as SEND. */
  threshold: number;
  /** Whether SEND_ZC notifications carry IORING_SEND_ZC_REPORT_USAGE's answer. */
  reportUsage: boolean;
  /** Fewest sends of a size class in one trial window. Default 128. */
  window?: number;
  /** Share of copied notifications from which copies dominate. Default 0.5. */
  copiedRatio?: number;
  /** Pairs of trial windows (SEND_ZC, then SEND) per measurement, 1..64. Default 3. */
  rounds?: number;
  /** How much faster (pooled rate) the other kind must be to replace the current choice, 0..10.
   * Default 0.05. */
  margin?: number;
  /** Sends of a size class between two measurements. Default 8192. */
  probeEvery?: number;
  /** Shortest trial window in ms. Default 25. */
  trialMs?: number;
  /** Without usage reports: ms from the first measured send to the first trial. Default 100. */
  warmupMs?: number;
  /** Shortest ms between two measurements. Default 2000. */
  remeasureMs?: number;
}

/** Phases of a size class: measuring SEND_ZC, measuring SEND, settled on SEND_ZC, settled on
 * SEND, warming up. The two measuring phases come first (`<= MEASURE_COPY` tests for either). */
const MEASURE_ZC = 0, MEASURE_COPY = 1, SETTLED_ZC = 2, SETTLED_COPY = 3, WARMUP = 4;
/** Size classes: floor(log2(bytes)), clamped. */
const CLASS_COUNT = 32;
/** Zero-copy confirmed by REPORT_USAGE settles a class on SEND_ZC without a SEND trial only from
 * this size (below it, pinning and notifying can cost more than copying even when no copy
 * happens). */
const CONFIRM_MIN_BYTES = 16384;
/** The re-probe wait of a copying class doubles at most this many times (2 s → 64 s with the
 * default remeasureMs). */
const MAX_BACKOFF_DOUBLINGS = 5;

/** Size class of a payload: floor(log2(bytes)), clamped to the class table. */
export function sizeClass(bytes: number): number {
  return bytes >= 2 ** (CLASS_COUNT - 1) ? CLASS_COUNT - 1 : 31 - Math.clz32(bytes);
}

/** Per size class: the phase and settled choice, the trial window running now, and the
 * measurement the windows add up to. */
export class AdaptivePolicy {
  readonly threshold: number;
  readonly reportUsage: boolean;
  readonly window: number;
  readonly copiedRatio: number;
  readonly rounds: number;
  readonly margin: number;
  readonly probeEvery: number;
  readonly trialMs: number;
  readonly warmupMs: number;
  readonly remeasureMs: number;
  private readonly stats: ZcStats;
  private readonly clock: () => number;
  /** SEND for everything (AF_UNIX, or the kernel refused SEND_ZC on this socket). */
  private copyOnly = false;
  /** End of the warm-up (-1: no measured send yet). */
  private warmupEndsAt = -1;
  /** Time of the last timed first CQE, so an operation is charged only the time since the
   * previous one completed (or since it was written, if later): its service time in the pipeline. */
  private lastSentAt = 0;
  // Per class: phase, settled choice (SETTLED_ZC / SETTLED_COPY), sends left before the clock is
  // read again, and the earliest time of the next measurement.
  private readonly phase = new Uint8Array(CLASS_COUNT).fill(WARMUP);
  private readonly choice = new Uint8Array(CLASS_COUNT).fill(SETTLED_COPY);
  private readonly sendsUntilCheck = new Float64Array(CLASS_COUNT);
  private readonly nextMeasurementAt = new Float64Array(CLASS_COUNT);
  /** Usage probes in a row that found copies dominating (the re-probe wait doubles with each). */
  private readonly copyingProbesInRow = new Uint8Array(CLASS_COUNT);
  /** 1 once this measurement's usage probe handed over to throughput trials. */
  private readonly usageProbed = new Uint8Array(CLASS_COUNT);
  // The current trial window: sends, bytes, charged ms, wall start, notifications (and copied
  // ones), and which window of the measurement it is (even: SEND_ZC, odd: SEND).
  private readonly trialSends = new Float64Array(CLASS_COUNT);
  private readonly trialBytes = new Float64Array(CLASS_COUNT);
  private readonly trialChargedMs = new Float64Array(CLASS_COUNT);
  private readonly trialStart = new Float64Array(CLASS_COUNT);
  private readonly trialNotifs = new Float64Array(CLASS_COUNT);
  private readonly trialCopied = new Float64Array(CLASS_COUNT);
  private readonly trialIndex = new Int32Array(CLASS_COUNT);
  // The measurement: pooled bytes and ms per kind, the SEND_ZC rate of the current pair, pairs
  // SEND_ZC won, and notifications (with copied ones) over its SEND_ZC windows.
  private readonly zcBytes = new Float64Array(CLASS_COUNT);
  private readonly zcMs = new Float64Array(CLASS_COUNT);
  private readonly copyBytes = new Float64Array(CLASS_COUNT);
  private readonly copyMs = new Float64Array(CLASS_COUNT);
  private readonly pairZcRate = new Float64Array(CLASS_COUNT);
  private readonly zcWins = new Int32Array(CLASS_COUNT);
  private readonly notifs = new Float64Array(CLASS_COUNT);
  private readonly copiedNotifs = new Float64Array(CLASS_COUNT);
  private readonly classes: (ZcSizeClass | undefined)[] = new Array(CLASS_COUNT).fill(undefined);

  /** `stats` receives the decisions (stats.decide) and the size-class entries; `where` names the
   * caller in option errors. */
  constructor(stats: ZcStats, o: AdaptivePolicyOptions, where: string, clock: () => number = () => performance.now()) {
    this.stats = stats;
    this.clock = clock;
    this.threshold = o.threshold;
    this.reportUsage = o.reportUsage;
    this.window = o.window ?? 128;
    this.copiedRatio = o.copiedRatio ?? 0.5;
    this.probeEvery = o.probeEvery ?? 8192;
    this.rounds = o.rounds ?? 3;
    if (!Number.isInteger(this.rounds) || this.rounds < 1 || this.rounds > 64) throw invalidArgument(where, `rounds must be 1..64, got ${shown(o.rounds)}`);
    this.margin = o.margin ?? 0.05;
    if (!(this.margin >= 0 && this.margin < 10)) throw invalidArgument(where, `margin must be 0..10, got ${shown(o.margin)}`);
    this.trialMs = o.trialMs ?? 25;
    this.remeasureMs = o.remeasureMs ?? 2000;
    this.warmupMs = o.warmupMs ?? 100;
    this.sendsUntilCheck.fill(this.window);
  }

  /** What the policy does, for stats.reason before any class has decided. */
  describe(): string {
    return `adaptive: SEND below ${this.threshold} bytes; each size class above (powers of two) measures SEND_ZC against SEND in ${this.rounds} alternating pairs of trials${this.reportUsage ? "" : " (without REPORT_USAGE copies cannot be seen: SEND is always tried against it)"}`;
  }

  /** From now on every send is SEND (`reason` says why: AF_UNIX, or EOPNOTSUPP from the kernel). */
  refuseZeroCopy(reason: string): void {
    this.copyOnly = true;
    this.stats.decide("copy", reason);
  }

  /** The size-class entry of payloads of `bytes`, once a send of that class has been chosen. */
  sizeClassOf(bytes: number): ZcSizeClass | undefined {
    return this.classes[sizeClass(bytes)];
  }

  /** Whether a send of `bytes` goes out as SEND_ZC (true) or SEND (false), now. */
  chooseZeroCopy(bytes: number): boolean {
    if (bytes < this.threshold || this.copyOnly) return false;
    const c = sizeClass(bytes);
    switch (this.phase[c]) {
      case MEASURE_ZC:
        return true;
      case MEASURE_COPY:
        return false;
      case WARMUP: {
        const now = this.clock();
        if (this.warmupEndsAt < 0) this.warmupEndsAt = now + this.warmupMs;
        this.classStats(c);
        // A usage probe needs no warm-up: it counts notifications, it does not time anything.
        if (this.reportUsage || ((this.sendsUntilCheck[c] = this.sendsUntilCheck[c]! - 1) <= 0 && now >= this.warmupEndsAt)) this.startMeasurement(c, now);
        return true;
      }
      default:
        if ((this.sendsUntilCheck[c] = this.sendsUntilCheck[c]! - 1) <= 0) {
          const now = this.clock();
          if (now >= this.nextMeasurementAt[c]!) {
            this.startMeasurement(c, now);
            return true;
          }
          // Not yet time: look at the clock again a window of sends later, not on every send.
          this.sendsUntilCheck[c] = this.window;
        }
        return this.phase[c] === SETTLED_ZC;
    }
  }

  /** The time stamp for an operation of `bytes` (its first send's size) written now, or 0 when it
   * is not timed: only a class under measurement is, so a settled path reads no clock. */
  stampWrite(bytes: number): number {
    return bytes >= this.threshold && this.phase[sizeClass(bytes)]! <= MEASURE_COPY ? this.clock() : 0;
  }

  /** An operation's first CQE: `sends` sends whose first is `bytes` long, SEND_ZC or not, `res`
   * as the CQE said, written at `writtenAt` (stampWrite's answer; 0 is ignored). An operation is
   * charged the time since it was written or since the previous timed CQE, whichever is later
   * (operations in flight together share the wall time). */
  observeSent(bytes: number, zeroCopy: boolean, res: number, sends: number, writtenAt: number): void {
    if (writtenAt <= 0) return;
    const now = this.clock();
    const since = writtenAt > this.lastSentAt ? writtenAt : this.lastSentAt;
    this.lastSentAt = now;
    if (res <= 0) return;
    const c = sizeClass(bytes);
    if (this.phase[c]! <= MEASURE_COPY) this.measure(c, zeroCopy, res, sends, now - since, now);
  }

  /** A notification released `sends` sends of an operation whose first send is `bytes` long;
   * `copied`: REPORT_USAGE said the kernel copied. */
  observeNotification(bytes: number, copied: boolean, sends: number): void {
    const c = sizeClass(bytes);
    if (this.phase[c] !== MEASURE_ZC) return;
    this.trialNotifs[c] = this.trialNotifs[c]! + sends;
    if (copied) this.trialCopied[c] = this.trialCopied[c]! + sends;
  }

  /** The stats entry of size class `c`, made on the class's first send. */
  private classStats(c: number): ZcSizeClass {
    let e = this.classes[c];
    if (e === undefined) {
      const lo = Math.max(2 ** c, this.threshold);
      e = new ZcSizeClass(lo, c >= CLASS_COUNT - 1 ? Number.MAX_SAFE_INTEGER : 2 ** (c + 1) - 1);
      e.decision = "zc";
      e.reason = "warming up on SEND_ZC before the first measurement";
      this.classes[c] = e;
      this.stats.sizeClasses.push(e);
    }
    return e;
  }

  private classRange(c: number): string {
    const e = this.classStats(c);
    const f = (n: number) => (n >= 1024 && n % 1024 === 0 ? `${n / 1024} KiB` : n >= 1023 && (n + 1) % 1024 === 0 ? `${(n + 1) / 1024} KiB` : `${n} B`);
    return e.maxBytes === Number.MAX_SAFE_INTEGER ? `sends of ${f(e.minBytes)} or more` : `sends of ${f(e.minBytes)} to under ${f(e.maxBytes)}`;
  }

  /** Start the alternating trial windows of class `c`, SEND_ZC first. */
  private startMeasurement(c: number, now: number): void {
    this.zcBytes[c] = this.zcMs[c] = this.copyBytes[c] = this.copyMs[c] = this.pairZcRate[c] = this.notifs[c] = this.copiedNotifs[c] = 0;
    this.zcWins[c] = 0;
    this.trialIndex[c] = 0;
    this.usageProbed[c] = 0;
    this.startWindow(c, MEASURE_ZC);
    const e = this.classStats(c);
    e.measuring = true;
    e.reason = this.reportUsage
      ? `probing: a window of SEND_ZC sends, to see from their notifications whether the kernel copies (${this.classRange(c)})`
      : `measuring: ${this.rounds} pairs of SEND_ZC and SEND trial windows (${this.classRange(c)})`;
    this.nextMeasurementAt[c] = now + this.remeasureMs;
  }

  private startWindow(c: number, phase: number): void {
    this.phase[c] = phase;
    this.trialSends[c] = this.trialBytes[c] = this.trialChargedMs[c] = this.trialNotifs[c] = this.trialCopied[c] = 0;
  }

  /** One operation's first CQE (`sends` sends of class `c`, `res` bytes, charged `ms`) into the
   * class's current trial window. A window ends after `window` sends and `trialMs`; the
   * measurement ends after `rounds` pairs of windows, and the pooled rates decide. */
  private measure(c: number, zeroCopy: boolean, res: number, sends: number, ms: number, now: number): void {
    const phase = this.phase[c]!;
    // An operation written before the window changed kind belongs to no window.
    if ((phase === MEASURE_ZC) !== zeroCopy) return;
    if (this.trialSends[c] === 0) this.trialStart[c] = now - ms;
    this.trialSends[c] = this.trialSends[c]! + sends;
    this.trialBytes[c] = this.trialBytes[c]! + res;
    this.trialChargedMs[c] = this.trialChargedMs[c]! + ms;
    const w = this.trialIndex[c]!;
    if (phase === MEASURE_ZC && w === 0 && this.reportUsage && this.usageProbed[c] === 0 && this.probeUsage(c, now)) return;
    if (this.trialSends[c]! < this.window || now - this.trialStart[c]! < this.trialMs) return;
    const rate = this.trialChargedMs[c]! > 0 ? this.trialBytes[c]! / this.trialChargedMs[c]! / 1000 : Infinity;
    if (phase === MEASURE_ZC) {
      this.notifs[c] = this.notifs[c]! + this.trialNotifs[c]!;
      this.copiedNotifs[c] = this.copiedNotifs[c]! + this.trialCopied[c]!;
      this.zcBytes[c] = this.zcBytes[c]! + this.trialBytes[c]!;
      this.zcMs[c] = this.zcMs[c]! + this.trialChargedMs[c]!;
      this.pairZcRate[c] = rate;
      this.trialIndex[c] = w + 1;
      this.startWindow(c, MEASURE_COPY);
      return;
    }
    this.copyBytes[c] = this.copyBytes[c]! + this.trialBytes[c]!;
    this.copyMs[c] = this.copyMs[c]! + this.trialChargedMs[c]!;
    if (this.pairZcRate[c]! > rate) this.zcWins[c] = this.zcWins[c]! + 1;
    if (w + 1 < 2 * this.rounds) {
      this.trialIndex[c] = w + 1;
      this.startWindow(c, MEASURE_ZC);
      return;
    }
    const zc = this.zcMs[c]! > 0 ? this.zcBytes[c]! / this.zcMs[c]! / 1000 : 0;
    const copy = this.copyMs[c]! > 0 ? this.copyBytes[c]! / this.copyMs[c]! / 1000 : 0;
    const wins = this.zcWins[c]!, pairs = this.rounds;
    // Hysteresis: the other kind must beat the current choice by `margin` in the pooled rate and
    // win most pairs; the first choice starts from SEND (it pins no pages, posts no notification).
    const goZc = this.choice[c] === SETTLED_COPY
      ? zc > copy * (1 + this.margin) && 2 * wins > pairs
      : !(copy > zc * (1 + this.margin) && 2 * (pairs - wins) > pairs);
    const e = this.classStats(c);
    e.zcMBs = zc;
    e.copyMBs = copy;
    e.zcWins = wins;
    e.pairs = pairs;
    e.measurements++;
    const copied = !this.reportUsage ? "SEND_ZC's usage is not reported" : this.copiedNotifs[c]! * 2 >= this.notifs[c]! ? "the kernel copies SEND_ZC data here" : "SEND_ZC is zero-copy here";
    const detail = `over ${pairs} alternating pairs of trials, SEND_ZC faster in ${wins}`;
    const again = `measuring again in ${this.probeEvery} sends of the class`;
    if (goZc) {
      this.settle(c, SETTLED_ZC, `${copied}, but SEND_ZC moved ${zc.toFixed(0)} MB/s against SEND's ${copy.toFixed(0)} MB/s ${detail}: ${this.classRange(c)} use SEND_ZC; ${again}`);
    } else {
      this.settle(c, SETTLED_COPY, `${copied}, and SEND moved ${copy.toFixed(0)} MB/s against SEND_ZC's ${zc.toFixed(0)} MB/s ${detail}: ${this.classRange(c)} use SEND; ${again}`);
    }
  }

  /** The usage probe, the first SEND_ZC window of a measurement with REPORT_USAGE. Returns true
   * while the window has to wait for notifications (they trail the sends) or once the usage
   * decided the class; false when throughput trials must decide (zero-copy below
   * CONFIRM_MIN_BYTES): the window then goes on as the first SEND_ZC trial. */
  private probeUsage(c: number, now: number): boolean {
    const notifs = this.trialNotifs[c]!;
    // A quarter of a window's sends and notifications tell copied from zero-copy: the reports
    // are all alike on one route, so a short probe costs little where SEND_ZC loses.
    const need = Math.max(1, this.window >> 2);
    if (this.trialSends[c]! < need || notifs < need) return true;
    const copied = this.trialCopied[c]!;
    const share = copied / notifs;
    const pct = Math.round(share * 100);
    if (share >= this.copiedRatio) {
      const k = this.copyingProbesInRow[c]!;
      if (k < MAX_BACKOFF_DOUBLINGS) this.copyingProbesInRow[c] = k + 1;
      const waitMs = this.remeasureMs * 2 ** k;
      this.nextMeasurementAt[c] = now + waitMs;
      this.classStats(c).measurements++;
      this.settle(c, SETTLED_COPY, `copies dominate: ${pct}% of ${notifs} SEND_ZC notifications said the kernel copied the data, so SEND_ZC cannot beat SEND's one copy: ${this.classRange(c)} use SEND; probing again after ${this.probeEvery} sends of the class and ${(waitMs / 1000).toFixed(1)} s`);
      return true;
    }
    this.copyingProbesInRow[c] = 0;
    if (this.classStats(c).minBytes >= CONFIRM_MIN_BYTES) {
      this.classStats(c).measurements++;
      this.settle(c, SETTLED_ZC, `zero-copy confirmed: ${pct}% of ${notifs} notifications reported a copy; ${this.classRange(c)} use SEND_ZC`);
      return true;
    }
    this.usageProbed[c] = 1;
    const e = this.classStats(c);
    e.reason = `measuring: zero-copy (${pct}% of ${notifs} notifications reported a copy), but below ${CONFIRM_MIN_BYTES / 1024} KiB pinning and notifying may cost more than copying: ${this.rounds} pairs of SEND_ZC and SEND trial windows (${this.classRange(c)})`;
    return false;
  }

  /** Class `c` settles on `choice` until its next measurement. */
  private settle(c: number, choice: number, reason: string): void {
    this.phase[c] = choice;
    this.choice[c] = choice;
    this.sendsUntilCheck[c] = this.probeEvery;
    const e = this.classStats(c);
    const d = choice === SETTLED_ZC ? "zc" : "copy";
    if (e.decision !== d) e.switches++;
    e.decision = d;
    e.measuring = false;
    e.reason = reason;
    this.stats.decide(d, reason);
  }
}
