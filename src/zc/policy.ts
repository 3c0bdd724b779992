// The adaptive policy of ZcSender: for each size class of payload, whether a send goes out as
// SEND_ZC or SEND, decided by timing both on the socket's own traffic. AdaptivePolicy's doc
// comment below is the one description of the policy; ZcSender's docs and the README point to it.
import { c } from "../../ffi/index.ts";
import { RUSAGE, RUSAGE_THREAD } from "../abi/net.ts";
import { invalidArgument, shown } from "../error.ts";
import { ZcSizeClass, type ZcStats } from "./stats.ts";

export interface AdaptivePolicyOptions {
  /** Payloads below this many bytes always go out as SEND. */
  threshold: number;
  /** Whether SEND_ZC notifications carry IORING_SEND_ZC_REPORT_USAGE's answer. */
  reportUsage: boolean;
  /** Fewest sends of a size class in one trial. Default 128. */
  window?: number;
  /** Share of copied notifications from which a class's SEND_ZC data counts as copied by the
   * kernel; a class whose share crosses it between two sessions is measured afresh. Default 0.5. */
  copiedRatio?: number;
  /** Pairs of trials (one of each kind) in a full measurement, 1..64. Default 4. */
  rounds?: number;
  /** How much faster the other kind must be (the estimate's ratio, minus 1) to replace the
   * current choice, 0..10. Default 0.03. */
  margin?: number;
  /** Fewest sends of a settled class between two probes. Default 1024. */
  probeEvery?: number;
  /** Shortest trial, in ms. Default 20. */
  trialMs?: number;
  /** Ms a new size class sends before its first measurement (TCP's ramp and the JIT's first
   * compilations would otherwise land on the first trials). Default 50. */
  warmupMs?: number;
  /** Ms between two probes of a settled class, doubled twice at most (to 4x) while one kind is clearly
   * ahead. Default 1000. */
  remeasureMs?: number;
}

const WARMUP = 0,
  TRIAL = 1,
  SETTLED = 2;
/** Size classes: floor(log2(bytes)), clamped. */
const CLASS_COUNT = 32;
/** Trial pairs kept per class; the estimate is their interquartile mean. */
const HISTORY = 8;
/** The probe interval doubles at most this many times (to remeasureMs × 4): probing costs little
 * (one trial of the other kind per interval), and a change of conditions is found within it. */
const MAX_BACKOFF = 2;
/** A ratio this far from 1 (log 1.25) is a clear lead: probes may space out. A probe pair this
 * far from the estimate, pointing to the other kind, is a change of conditions. */
const CLEAR = Math.log(1.25);
/** A trial's CPU time counts only when the sender was busy through it: wall time at most this
 * many times the charged time (plus 1 ms). Otherwise other work shared the thread. */
const BUSY = 1.5;
/** A gap longer than this (ms) between a completion and the next write is idle time, not work.
 * Shorter gaps count: a sender that waits for SEND_ZC's buffers to come back is not idle. */
const IDLE_MS = 20;
/** A pair's log ratios are clipped to ±log 3: a trial that the machine stalled cannot weigh
 * more than a threefold difference. */
const CLIP = Math.log(3);
/** Sends between two clock reads in warm-up. */
const WARMUP_CHECK = 16;
/** Fewest notifications in a session for its copied share to count. */
const USAGE_MIN = 8;

/** Size class of a payload: floor(log2(bytes)), clamped to the class table. */
export function sizeClass(bytes: number): number {
  return bytes >= 2 ** (CLASS_COUNT - 1) ? CLASS_COUNT - 1 : 31 - Math.clz32(bytes);
}

const rusage = new Int32Array(RUSAGE.size / 4);
/** CPU time of the calling thread in ms (getrusage RUSAGE_THREAD: user + system), NaN if the
 * call fails. One system call; the policy reads it twice per trial, never per send. */
export function threadCpuMs(): number {
  if (c.getrusage(RUSAGE_THREAD, rusage) !== 0) return Number.NaN;
  // struct timeval { time_t tv_sec; suseconds_t tv_usec; }, 64-bit little-endian fields: the low
  // words hold any CPU time below 68 years.
  const u = RUSAGE.utime >> 2,
    s = RUSAGE.stime >> 2;
  return (rusage[u]! + rusage[s]!) * 1000 + (rusage[u + 2]! + rusage[s + 2]!) / 1000;
}

function clip(x: number): number {
  return x > CLIP ? CLIP : x < -CLIP ? -CLIP : x;
}

function positiveInteger(where: string, name: string, v: number | undefined, dflt: number): number {
  const x = v ?? dflt;
  if (!Number.isInteger(x) || x < 1)
    throw invalidArgument(where, `${name} must be a positive integer, got ${shown(v)}`);
  return x;
}

/** A time option in ms: 0 .. one hour. */
function milliseconds(where: string, name: string, v: number | undefined, dflt: number): number {
  const x = v ?? dflt;
  if (!(x >= 0 && x <= 3_600_000)) throw invalidArgument(where, `${name} must be 0..3600000 ms, got ${shown(v)}`);
  return x;
}

/** One size class: its stats entry, where it is in its schedule, the trial and session running,
 * its last pairs, and the usage evidence. Made on the class's first send; nothing per send. */
class SizeClassState {
  phase = WARMUP;
  /** The kind sent now (warm-up: SEND_ZC) and the settled choice (the first is SEND). */
  zcNow = true;
  choice = false;
  /** Sends left before the clock is read again. */
  sendsUntilCheck = WARMUP_CHECK;
  warmupEndsAt: number;
  nextProbeAt = 0;
  /** Doublings of the probe interval, probes run (their parity orders a probe's trials), and
   * surprising probes in a row (0 or 1). */
  backoff = 0;
  probes = 0;
  surprises = 0;
  // The session (a measurement or a probe): trials in it, the one running, the first one's kind,
  // and bytes and charged ms per kind over it.
  sessionTrials = 0;
  trialIndex = 0;
  firstZc = true;
  sessionZcBytes = 0;
  sessionZcMs = 0;
  sessionCopyBytes = 0;
  sessionCopyMs = 0;
  // The trial running: when its clocks started (-1: waiting for its first completion), the CPU
  // time then, and sends, bytes and charged ms since.
  trialStart = -1;
  trialCpuStart = 0;
  trialSends = 0;
  trialBytes = 0;
  trialChargedMs = 0;
  // The pair being completed: each kind's rate (bytes per charged ms) and CPU ms per byte.
  pairZcRate = 0;
  pairCopyRate = 0;
  pairZcCpu = 0;
  pairCopyCpu = 0;
  // The last HISTORY pairs: log(SEND_ZC rate / SEND rate) and log(SEND CPU per byte / SEND_ZC CPU
  // per byte) (NaN when not measurable), how many there are and the next slot, the latest pair's
  // rate log, and the throughput estimate at the end of the last session.
  readonly pairRate = new Float64Array(HISTORY);
  readonly pairCpu = new Float64Array(HISTORY);
  pairCount = 0;
  pairNext = 0;
  lastPair = 0;
  estimate = 0;
  // Usage evidence: notifications (and copied ones) so far, their counts when the session began,
  // and the copied share of the last session that had enough of them (-1: none yet).
  notifs = 0;
  copied = 0;
  notifsAtStart = 0;
  copiedAtStart = 0;
  copiedShare = -1;

  constructor(
    readonly entry: ZcSizeClass,
    warmupEndsAt: number,
  ) {
    this.warmupEndsAt = warmupEndsAt;
  }

  /** The range of payloads, for reasons. */
  range(): string {
    const e = this.entry;
    const f = (n: number) =>
      n >= 1024 && n % 1024 === 0
        ? `${n / 1024} KiB`
        : n >= 1023 && (n + 1) % 1024 === 0
          ? `${(n + 1) / 1024} KiB`
          : `${n} B`;
    return e.maxBytes === Number.MAX_SAFE_INTEGER
      ? `sends of ${f(e.minBytes)} or more`
      : `sends of ${f(e.minBytes)} to under ${f(e.maxBytes)}`;
  }
}

/**
 * ZcSender's adaptive policy: SEND_ZC or SEND for each size class of payload (powers of two:
 * 2-4 KiB, 4-8 KiB, ...), decided by what each kind achieves on this socket, now.
 *
 * Payloads below `threshold` bytes always go out as SEND. A new class sends SEND_ZC for `warmupMs`,
 * then is measured: `rounds` pairs of trials, SEND_ZC and SEND in ABBA order (so a steady drift of
 * the machine falls on both kinds alike). A trial sends the class's traffic as one kind for at
 * least `window` sends and `trialMs`; it counts the bytes of the operations' first CQEs against
 * their charged time: from the previous timed CQE, so the sender's own work between operations
 * counts (completions, notifications and releases: more of it for SEND_ZC), and so do its waits for
 * buffers that SEND_ZC still holds; only a gap of more than 20 ms before an operation's write is
 * idle, and the operation is charged from its write. It also reads the calling thread's CPU time
 * (getrusage, twice per trial). The first completion of a trial only starts its clocks, so what the
 * previous kind left in flight is not charged to it.
 *
 * Each pair gives the log of SEND_ZC's rate over SEND's, and of SEND's CPU per byte over SEND_ZC's
 * (only when the sender was busy through both trials). The class keeps its last 8 pairs; their
 * interquartile means are the estimates, so a trial that a scheduler hiccup halved does not decide.
 * Throughput decides when one kind leads by more than `margin`; within it, CPU per byte decides by
 * the same margin; otherwise the class keeps its choice (the first is SEND, which pins nothing).
 * The kernel's usage report (REPORT_USAGE: copied or zero-copy) is evidence only: on loopback it
 * says "copied" for every SEND_ZC, and yet which kind moves more bytes there changes with where the
 * load sits (bench/results/tcp-stream-adaptive-2026-12-05.md).
 *
 * A settled class is probed again after `probeEvery` sends and `remeasureMs`: one pair of trials,
 * in alternating order, added to the pairs. The interval doubles, up to 4 × `remeasureMs`, while
 * one kind leads by more than 25% and stays chosen, and goes back to `remeasureMs` otherwise; a
 * class with fewer than 8 pairs probes every `remeasureMs` / 4, since its first trials ran while
 * TCP and the JIT warmed up. A probe that points to the other kind and lies more than 25% from the
 * estimate is followed at once by a second probe; when that one does too, or when the copied share
 * crosses `copiedRatio` between two sessions (a new route), the class forgets all but its latest
 * pairs and is measured afresh. Each pair's logs are clipped to ±log 3, so one stalled trial weighs
 * little. A settled class costs one decrement per send and a clock read every `window` sends once
 * `probeEvery` have gone; the clocks are read per operation only during trials. `stats.sizeClasses`
 * shows each class's choice, rates and reason.
 */
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
  private readonly cpuClock: () => number;
  private readonly logMargin: number;
  /** SEND for everything (AF_UNIX, or the kernel refused SEND_ZC on this socket). */
  private copyOnly = false;
  /** Time of the last timed first CQE: the next one is charged from there (see observeSent). */
  private lastSentAt = 0;
  private readonly classes: (SizeClassState | undefined)[] = new Array(CLASS_COUNT).fill(undefined);
  private readonly scratch = new Float64Array(HISTORY);
  private readonly scratchCpu = new Float64Array(HISTORY);

  /** `stats` receives the decisions (stats.decide) and the size-class entries; `where` names the
   * caller in option errors. `clock` gives ms (wall), `cpuClock` the calling thread's CPU ms. */
  constructor(
    stats: ZcStats,
    o: AdaptivePolicyOptions,
    where: string,
    clock: () => number = () => performance.now(),
    cpuClock: () => number = threadCpuMs,
  ) {
    this.stats = stats;
    this.clock = clock;
    this.cpuClock = cpuClock;
    this.threshold = o.threshold;
    this.reportUsage = o.reportUsage;
    this.window = positiveInteger(where, "window", o.window, 128);
    this.copiedRatio = o.copiedRatio ?? 0.5;
    if (!(this.copiedRatio > 0 && this.copiedRatio <= 1))
      throw invalidArgument(where, `copiedRatio must be in (0, 1], got ${shown(o.copiedRatio)}`);
    this.probeEvery = positiveInteger(where, "probeEvery", o.probeEvery, 1024);
    this.rounds = o.rounds ?? 4;
    if (!Number.isInteger(this.rounds) || this.rounds < 1 || this.rounds > 64)
      throw invalidArgument(where, `rounds must be 1..64, got ${shown(o.rounds)}`);
    this.margin = o.margin ?? 0.03;
    if (!(this.margin >= 0 && this.margin < 10))
      throw invalidArgument(where, `margin must be 0..10, got ${shown(o.margin)}`);
    this.logMargin = Math.log1p(this.margin);
    this.trialMs = milliseconds(where, "trialMs", o.trialMs, 20);
    this.warmupMs = milliseconds(where, "warmupMs", o.warmupMs, 50);
    this.remeasureMs = milliseconds(where, "remeasureMs", o.remeasureMs, 1000);
  }

  /** What the policy does, for stats.reason before any class has decided. */
  describe(): string {
    return `adaptive: SEND below ${this.threshold} bytes; each size class above (powers of two) times SEND_ZC against SEND on this socket's own sends (${this.rounds} pairs of trials, then a probe pair from time to time) and keeps the faster`;
  }

  /** From now on every send is SEND (`reason` says why: AF_UNIX, or EOPNOTSUPP from the kernel). */
  refuseZeroCopy(reason: string): void {
    this.copyOnly = true;
    this.stats.decide("copy", reason);
  }

  /** The size-class entry of payloads of `bytes`, once a send of that class has been chosen. */
  sizeClassOf(bytes: number): ZcSizeClass | undefined {
    return this.classes[sizeClass(bytes)]?.entry;
  }

  /** Whether a send of `bytes` goes out as SEND_ZC (true) or SEND (false), now. */
  chooseZeroCopy(bytes: number): boolean {
    // An empty send has nothing to pin (and no size class): SEND, whatever the threshold.
    if (bytes < this.threshold || bytes === 0 || this.copyOnly) return false;
    const k = this.classes[sizeClass(bytes)] ?? this.addClass(bytes);
    if (k.phase !== TRIAL && --k.sendsUntilCheck <= 0) this.check(k);
    return k.zcNow;
  }

  /** The time stamp for an operation of `bytes` (its first send's size) written now, or 0 when it
   * is not timed: only a class in a trial is, so a settled path reads no clock. */
  stampWrite(bytes: number): number {
    if (bytes < this.threshold || bytes === 0 || this.copyOnly) return 0;
    return this.classes[sizeClass(bytes)]?.phase === TRIAL ? this.clock() : 0;
  }

  /** An operation's first CQE: `sends` sends whose first is `bytes` long, SEND_ZC or not, `res`
   * as the CQE said, written at `writtenAt` (stampWrite's answer; 0 is ignored). */
  observeSent(bytes: number, zeroCopy: boolean, res: number, sends: number, writtenAt: number): void {
    if (writtenAt <= 0) return;
    const now = this.clock();
    // Charged from the previous timed completion, so the sender's own work between operations
    // (completions, notifications, releases: more of it for SEND_ZC) and its waits for buffers
    // count; from the write when the operation came more than IDLE_MS after that completion.
    const since = writtenAt - this.lastSentAt > IDLE_MS ? writtenAt : this.lastSentAt;
    this.lastSentAt = now;
    const k = this.classes[sizeClass(bytes)];
    // An operation of the other kind (written before the trial began) belongs to no trial.
    if (res <= 0 || k === undefined || k.phase !== TRIAL || k.zcNow !== zeroCopy) return;
    if (k.trialStart < 0) {
      k.trialStart = now;
      k.trialCpuStart = this.cpuClock();
      return;
    }
    k.trialSends += sends;
    k.trialBytes += res;
    k.trialChargedMs += now - since;
    if (k.trialSends >= this.window && now - k.trialStart >= this.trialMs) this.endTrial(k, now);
  }

  /** A notification released `sends` sends of an operation whose first send is `bytes` long;
   * `copied`: REPORT_USAGE said the kernel copied. */
  observeNotification(bytes: number, copied: boolean, sends: number): void {
    if (!this.reportUsage || bytes < this.threshold) return;
    const k = this.classes[sizeClass(bytes)];
    if (k === undefined) return;
    k.notifs += sends;
    if (copied) k.copied += sends;
  }

  /** A class's first send: its stats entry, and its warm-up from now. */
  private addClass(bytes: number): SizeClassState {
    const c = sizeClass(bytes);
    const e = new ZcSizeClass(
      Math.max(2 ** c, this.threshold),
      c >= CLASS_COUNT - 1 ? Number.MAX_SAFE_INTEGER : 2 ** (c + 1) - 1,
    );
    e.decision = "zc";
    e.reason = `warming up on SEND_ZC for ${this.warmupMs} ms before the first measurement`;
    this.stats.sizeClasses.push(e);
    const k = new SizeClassState(e, this.clock() + this.warmupMs);
    // A class without a warm-up measures from its first send.
    if (this.warmupMs === 0) k.sendsUntilCheck = 1;
    this.classes[c] = k;
    return k;
  }

  /** A warming-up or settled class whose send count ran out: read the clock, and start the
   * first measurement or a probe when due. */
  private check(k: SizeClassState): void {
    const now = this.clock();
    if (k.phase === WARMUP) {
      if (now >= k.warmupEndsAt) this.startSession(k, this.rounds);
      else k.sendsUntilCheck = WARMUP_CHECK;
    } else if (now >= k.nextProbeAt) {
      k.probes++;
      this.startSession(k, 1);
    } else k.sendsUntilCheck = this.window;
  }

  /** Start `pairs` pairs of trials. A measurement (several pairs) runs ABBA from the kind not in
   * use; a probe's one pair alternates its order from probe to probe. */
  private startSession(k: SizeClassState, pairs: number): void {
    k.firstZc = pairs > 1 || (k.probes & 1) === 1 ? !k.choice : k.choice;
    k.sessionTrials = 2 * pairs;
    k.trialIndex = 0;
    k.sessionZcBytes = k.sessionZcMs = k.sessionCopyBytes = k.sessionCopyMs = 0;
    k.notifsAtStart = k.notifs;
    k.copiedAtStart = k.copied;
    k.phase = TRIAL;
    k.entry.measuring = true;
    if (pairs > 1) k.entry.reason = `measuring: ${pairs} pairs of SEND_ZC and SEND trials (${k.range()})`;
    this.beginTrial(k);
  }

  /** Trial i of a session: ABBA from the first kind (i = 0, 3, 4, 7...: the first kind). */
  private beginTrial(k: SizeClassState): void {
    k.zcNow = (((k.trialIndex + 1) >> 1) & 1) === 1 ? !k.firstZc : k.firstZc;
    k.trialStart = -1;
    k.trialSends = k.trialBytes = k.trialChargedMs = 0;
  }

  private endTrial(k: SizeClassState, now: number): void {
    const bytes = k.trialBytes,
      ms = k.trialChargedMs;
    const rate = bytes / (ms > 1e-6 ? ms : 1e-6);
    const busy = now - k.trialStart <= BUSY * ms + 1;
    const cpu = busy ? (this.cpuClock() - k.trialCpuStart) / bytes : Number.NaN;
    if (k.zcNow) {
      k.pairZcRate = rate;
      k.pairZcCpu = cpu;
      k.sessionZcBytes += bytes;
      k.sessionZcMs += ms;
    } else {
      k.pairCopyRate = rate;
      k.pairCopyCpu = cpu;
      k.sessionCopyBytes += bytes;
      k.sessionCopyMs += ms;
    }
    if ((k.trialIndex & 1) === 1) this.pushPair(k);
    if (k.trialIndex + 1 < k.sessionTrials) {
      k.trialIndex++;
      this.beginTrial(k);
      return;
    }
    this.endSession(k, now);
  }

  private pushPair(k: SizeClassState): void {
    const l = clip(Math.log(k.pairZcRate / k.pairCopyRate));
    k.pairRate[k.pairNext] = l;
    k.pairCpu[k.pairNext] =
      k.pairZcCpu > 0 && k.pairCopyCpu > 0 ? clip(Math.log(k.pairCopyCpu / k.pairZcCpu)) : Number.NaN;
    k.pairNext = (k.pairNext + 1) % HISTORY;
    if (k.pairCount < HISTORY) k.pairCount++;
    k.lastPair = l;
  }

  /** Keep only the latest `keep` pairs. */
  private forgetOlderPairs(k: SizeClassState, keep: number): void {
    const n = Math.min(keep, k.pairCount);
    for (let j = 0; j < n; j++) {
      const from = (k.pairNext + HISTORY - n + j) % HISTORY;
      this.scratch[j] = k.pairRate[from]!;
      this.scratchCpu[j] = k.pairCpu[from]!;
    }
    k.pairRate.set(this.scratch.subarray(0, n));
    k.pairCpu.set(this.scratchCpu.subarray(0, n));
    k.pairCount = n;
    k.pairNext = n % HISTORY;
  }

  /** The interquartile mean of the first `count` values of `from` (NaN ignored; NaN if fewer
   * than `least` values). */
  private iqMean(from: Float64Array, count: number, least: number): number {
    const v = this.scratch;
    let n = 0;
    for (let j = 0; j < count; j++) {
      const x = from[j]!;
      if (x !== x) continue;
      let i = n++;
      for (; i > 0 && v[i - 1]! > x; i--) v[i] = v[i - 1]!;
      v[i] = x;
    }
    if (n < least) return Number.NaN;
    const cut = n >> 2;
    let sum = 0;
    for (let i = cut; i < n - cut; i++) sum += v[i]!;
    return sum / (n - 2 * cut);
  }

  private endSession(k: SizeClassState, now: number): void {
    const m = this.logMargin;
    const e = k.entry;
    // Usage evidence of this session: a crossing of copiedRatio means a new route.
    const dn = k.notifs - k.notifsAtStart;
    const share = dn >= USAGE_MIN ? (k.copied - k.copiedAtStart) / dn : -1;
    const before = k.copiedShare;
    const usageChanged = share >= 0 && before >= 0 && share >= this.copiedRatio !== before >= this.copiedRatio;
    if (share >= 0) k.copiedShare = share;
    if (k.sessionTrials === 2) {
      const l = k.lastPair;
      const surprise = (k.choice ? l < -m : l > m) && Math.abs(l - k.estimate) > CLEAR;
      // One surprising probe may be a hiccup of the machine: a second probe follows at once, and
      // only two in a row (or a new copied share) start a fresh measurement.
      if (surprise && !usageChanged && k.surprises === 0) {
        k.surprises = 1;
        k.probes++;
        this.startSession(k, 1);
        return;
      }
      k.surprises = 0;
      if (surprise || usageChanged) {
        this.forgetOlderPairs(k, surprise ? 2 : 1);
        this.startSession(k, this.rounds);
        e.reason = usageChanged
          ? `measuring afresh: the kernel's copied share moved from ${Math.round(before * 100)}% to ${Math.round(share * 100)}% (${k.range()})`
          : `measuring afresh: a probe found SEND_ZC at ${Math.exp(l).toFixed(2)}x SEND's rate, against ${Math.exp(k.estimate).toFixed(2)}x so far (${k.range()})`;
        return;
      }
    }
    const est = this.iqMean(k.pairRate, k.pairCount, 1);
    const cpuEst = this.iqMean(k.pairCpu, k.pairCount, 2);
    k.estimate = est;
    const current = k.choice;
    let zc = current,
      basis: string;
    if (est > m || est < -m) {
      zc = est > 0;
      basis = "throughput";
    } else if (cpuEst > m || cpuEst < -m) {
      zc = cpuEst > 0;
      basis = `throughput within ${(this.margin * 100).toFixed(0)}%, CPU per byte`;
    } else basis = `both within ${(this.margin * 100).toFixed(0)}%, kept`;
    // A class with fewer than HISTORY pairs is young (its first trials ran while TCP and the JIT
    // warmed up): it probes four times as often, and spaces its probes out only once grown.
    const grown = k.pairCount === HISTORY;
    k.backoff = grown && zc === current && Math.abs(est) > CLEAR ? Math.min(k.backoff + 1, MAX_BACKOFF) : 0;
    const waitMs = grown ? this.remeasureMs * 2 ** k.backoff : this.remeasureMs / 4;
    k.nextProbeAt = now + waitMs;
    k.sendsUntilCheck = this.probeEvery;
    k.choice = zc;
    k.zcNow = zc;
    k.phase = SETTLED;

    const zcMBs = k.sessionZcMs > 0 ? k.sessionZcBytes / k.sessionZcMs / 1000 : 0;
    const copyMBs = k.sessionCopyMs > 0 ? k.sessionCopyBytes / k.sessionCopyMs / 1000 : 0;
    let wins = 0;
    for (let j = 0; j < k.pairCount; j++) if (k.pairRate[j]! > 0) wins++;
    e.zcMBs = zcMBs;
    e.copyMBs = copyMBs;
    e.zcWins = wins;
    e.pairs = k.pairCount;
    e.measurements++;
    const d = zc ? "zc" : "copy";
    if (e.decision !== d) e.switches++;
    e.decision = d;
    e.measuring = false;
    const cpuText = cpuEst === cpuEst ? `, SEND's CPU per byte ${Math.exp(cpuEst).toFixed(2)}x SEND_ZC's` : "";
    const usage = !this.reportUsage
      ? "SEND_ZC's usage is not reported"
      : k.copiedShare >= 0
        ? `the kernel reported ${Math.round(k.copiedShare * 100)}% of SEND_ZC sends copied`
        : "too few SEND_ZC notifications to tell copied from zero-copy";
    e.reason = `${k.range()} use ${zc ? "SEND_ZC" : "SEND"} (${basis}): SEND_ZC ${zcMBs.toFixed(0)} MB/s, SEND ${copyMBs.toFixed(0)} MB/s in the last session; over ${e.pairs} trial pairs SEND_ZC ran at ${Math.exp(est).toFixed(2)}x SEND's rate (faster in ${wins})${cpuText}; ${usage}; next probe in ${(waitMs / 1000).toFixed(1)} s`;
    this.stats.decide(d, e.reason);
  }
}
