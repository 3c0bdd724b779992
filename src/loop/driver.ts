// Completions inside Bun's event loop, without blocking it. The ring's eventfd
// (IORING_REGISTER_EVENTFD) is read through a Bun.file(fd) stream: Bun polls the non-blocking fd
// with its own epoll loop on the main thread, so a completion wakes the loop the way a socket
// does, and timers, Bun.serve requests and other I/O keep running while operations wait. After
// the wake the driver drains the CQ on this thread. The other waits tried (fs.read on the eventfd
// in Bun's thread pool, a Worker blocked in read(2) with Atomics.waitAsync) were slower and
// cannot be withdrawn when nothing is in flight; the stream can be cancelled, which is how the
// driver lets the process exit. Figures: bench/results/latency-2026-11-25.json.
//
// When the kernel signals the eventfd decides how fast a wake is (measured and traced in
// bench/results/wakeup-2026-12-05.md):
// - Without DEFER_TASKRUN (the async API's default) a completion raised by another process (the
//   network softirq: a peer's data, a connection) queues task work, which interrupts this
//   thread's epoll wait; the CQE is posted from this thread and the eventfd is signalled at once.
// - With DEFER_TASKRUN the completion is only queued (io_req_local_work_add) and the kernel
//   signals the eventfd when that queue goes from empty to non-empty. Raised from the softirq,
//   the signal is deferred through an RCU callback (io_eventfd_signal → call_rcu_hurry →
//   io_eventfd_do_signal): on 6.18 and 7.2 the wake came one RCU grace period later.
//   Deferred work runs only inside an enter with GETEVENTS, so the driver enters before it looks
//   at the CQ (Ring.completions does) and once more after turning the eventfd back on.
//
// `spinUs` (default 0) polls the CQ from setImmediate for that long after completions. It helps
// a ping-pong only when a core is idle: with client and server as separate processes on two
// cores, polling takes the CPU the peer needs, and the round trip got slower
// (bench/results/wakeup-2026-12-05.md has both settings).
//
// Submissions are batched per event-loop turn: `kick()` queues one microtask that publishes every
// SQE prepared during the turn with a single io_uring_enter.
//
// While the driver looks at the CQ anyway (inside a turn, and while it polls), it turns the
// eventfd off (IORING_CQ_EVENTFD_DISABLED, liburing's io_uring_cq_eventfd_toggle): the kernel then
// skips the eventfd write and the epoll wake-up for each CQE. It turns the eventfd back on only
// before it goes back to waiting on it, and then looks at the CQ once more, since nothing posted
// in between signalled.
import { c, errno } from "../../ffi/index.ts";
import { EFD_CLOEXEC, EFD_NONBLOCK } from "../abi/net.ts";
import { UringError, closedError, invalidArgument, shown } from "../error.ts";
import type { Ring } from "../ring/ring.ts";
import { registerEventfd, unregisterEventfd } from "../ring/register.ts";
import { confirmFd, disownFd, fdLedger, pendingFd } from "../ring/reclaim.ts";
import { IORING_SETUP_DEFER_TASKRUN } from "../abi/setup.ts";

export interface LoopDriverOptions {
  /** Microseconds to keep polling the CQ from setImmediate after completions arrived, before
   * waiting on the eventfd alone. Default 0 (no polling): see the header for when it helps. */
  spinUs?: number;
  /** Called with an exception thrown by a completion handler; the driver keeps running. A
   * throwing handler costs no other CQE: Ring.completions runs every handler of the batch, then
   * throws the first error. Default: rethrown from a microtask, like an uncaught error of any
   * callback. */
  onError?: (error: unknown) => void;
}

/** Work to run just before the turn's submit: it prepares SQEs that must go out together (a
 * socket's queued sends, linked in order). */
export interface PreSubmit {
  prepareSubmit(): void;
}

const DEFAULT_SPIN_US = 0;
const MAX_SPIN_US = 1_000_000;

/** Drives one ring from Bun's event loop. Create it on the thread that submits (the ring is
 * SINGLE_ISSUER by default). While operations are in flight it keeps the process alive, like an
 * open socket; when none are, it holds nothing and the process may exit. */
export class LoopDriver {
  readonly ring: Ring;
  /** The eventfd the kernel signals for each posted CQE (or queued deferred completion). */
  readonly eventfd: number;
  /** Poll window after activity, in microseconds. */
  spinUs: number;
  /** Wake-ups through the eventfd, polls that found completions, and submits issued. */
  readonly stats = { wakes: 0, polls: 0, submits: 0, turns: 0 };

  private reader: { read(): Promise<{ done?: boolean }>; cancel(): Promise<void> } | null = null;
  private reading = false;
  private flushQueued = false;
  private spinning = false;
  private spinUntilMs = 0;
  /** Completions were handled since the poll window's deadline was last set. */
  private activity = false;
  private closed = false;
  private fdReleased: Promise<void> = Promise.resolve();
  /** The eventfd is turned off (the driver will look at the CQ without a signal). */
  private quiet = false;
  private readonly canQuiet: boolean;
  private readonly deferTaskrun: boolean;
  private readonly presubmit: PreSubmit[] = [];
  private readonly onError: (error: unknown) => void;
  // Bound once: no closure per wake, per turn or per operation.
  private readonly flushTask = (): void => this.flush();
  private readonly spinTask = (): void => this.spin();
  private readonly onRead = (r: { done?: boolean }): void => this.woken(r.done === true);
  private readonly onReadError = (): void => {
    this.reading = false;
    this.reader = null;
  };

  constructor(ring: Ring, options: LoopDriverOptions = {}) {
    if (ring.isClosed) throw closedError("LoopDriver");
    const spinUs = options.spinUs ?? DEFAULT_SPIN_US;
    if (!Number.isFinite(spinUs) || spinUs < 0 || spinUs > MAX_SPIN_US)
      throw invalidArgument("LoopDriver", `spinUs must be 0..${MAX_SPIN_US}, got ${shown(options.spinUs)}`);
    this.ring = ring;
    this.spinUs = spinUs;
    this.onError =
      options.onError ??
      ((e) =>
        queueMicrotask(() => {
          throw e;
        }));
    // In the fd ledger the moment it exists (no function call between the syscall and the
    // store): a terminated Worker's eventfd is closed by another thread (src/ring/reclaim.ts).
    const at = pendingFd("eventfd");
    const fd = c.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    fdLedger[at] = fd;
    if (fd < 0) {
      const e = new UringError("eventfd", errno(), "the loop driver's wake-up descriptor");
      confirmFd(at, fd);
      throw e;
    }
    confirmFd(at, fd);
    try {
      registerEventfd(ring, fd);
    } catch (e) {
      c.close(fd);
      disownFd(fd);
      throw e;
    }
    this.eventfd = fd;
    this.deferTaskrun = (ring.flags & IORING_SETUP_DEFER_TASKRUN) !== 0;
    this.canQuiet = ring.canToggleEventfd;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Ask for a submit at the end of this turn: every SQE prepared before it runs goes to the
   * kernel in one io_uring_enter. Call after preparing SQEs. */
  kick(): void {
    if (this.flushQueued || this.closed) return;
    this.flushQueued = true;
    queueMicrotask(this.flushTask);
  }

  /** Run `task.prepareSubmit()` right before this turn's submit (and kick). */
  beforeSubmit(task: PreSubmit): void {
    this.presubmit.push(task);
    this.kick();
  }

  /** Submit now, dispatch what is already complete, and arm the wait. */
  flush(): void {
    this.flushQueued = false;
    if (this.closed || this.ring.isClosed) return;
    this.stats.turns++;
    try {
      this.silence();
      const pre = this.presubmit;
      for (let i = 0; i < pre.length; i++) pre[i]!.prepareSubmit();
      pre.length = 0;
      if (this.ring.pending > 0) {
        this.ring.submit();
        this.stats.submits++;
      }
      // Inline completions (loopback sends, NOPs, errors at submit) are in the CQ already; with
      // DEFER_TASKRUN the submit above entered with GETEVENTS, so they are visible too.
      if (this.ring.cqReady > 0) this.drain();
    } catch (e) {
      this.onError(e);
    }
    this.arm();
  }

  /** Reap and dispatch everything complete now, then submit what the handlers queued. */
  private drain(): number {
    let total = 0;
    for (let round = 0; round < 64; round++) {
      let n = 0;
      try {
        n = this.ring.completions();
      } catch (e) {
        this.onError(e);
      }
      total += n;
      if (this.ring.pending > 0) {
        this.flushQueued = false;
        this.ring.submit();
        this.stats.submits++;
        if (this.ring.cqReady > 0) continue;
      }
      break;
    }
    if (total > 0 && this.spinUs > 0) this.startSpin();
    return total;
  }

  private woken(done: boolean): void {
    if (done) return; // a cancelled stream: its replacement (if any) has its own read
    this.reading = false;
    if (this.closed || this.ring.isClosed) return;
    this.stats.wakes++;
    try {
      this.silence();
      // Deferred completions run only inside an enter with GETEVENTS, and the kernel signals the
      // eventfd only when its list of them goes from empty to non-empty: run them on every wake,
      // even when some CQEs are already visible, or the rest would wait for a signal that never
      // comes.
      if (this.deferTaskrun) this.ring.getEvents();
      this.drain();
    } catch (e) {
      this.onError(e);
    }
    this.arm();
  }

  /** Open (or extend) the poll window. While a window is open this only marks activity: the
   * next poll tick moves the deadline, so a busy ring reads the clock once per tick, not once per
   * drain (a ping-pong that stays in microtasks never reaches a tick at all). */
  private startSpin(): void {
    if (this.spinning) {
      this.activity = true;
      return;
    }
    this.spinning = true;
    this.activity = false;
    this.spinUntilMs = performance.now() + this.spinUs / 1000;
    setImmediate(this.spinTask);
  }

  private spin(): void {
    if (this.closed || this.ring.isClosed || this.ring.ops.inflight === 0) {
      this.spinning = false;
      this.arm();
      return;
    }
    let n = 0;
    try {
      if (this.deferTaskrun) this.ring.getEvents();
      n = this.drain();
    } catch (e) {
      this.onError(e);
    }
    if (n > 0) this.stats.polls++;
    const now = performance.now();
    if (this.activity) {
      this.activity = false;
      this.spinUntilMs = now + this.spinUs / 1000;
    }
    if (now < this.spinUntilMs) {
      setImmediate(this.spinTask);
    } else {
      this.spinning = false;
    }
    this.arm();
  }

  /** Turn the eventfd off: this turn looks at the CQ itself. */
  private silence(): void {
    if (this.canQuiet && !this.quiet) {
      this.ring.setEventfdEnabled(false);
      this.quiet = true;
    }
  }

  /** Turn the eventfd back on before waiting on it. Returns whether completions arrived while it
   * was off (they signalled nothing, so the wait would not end for them): CQEs already visible,
   * or, with DEFER_TASKRUN, deferred work that only an enter with GETEVENTS turns into CQEs (the
   * kernel signals only when that list goes from empty to non-empty). */
  private unsilence(): boolean {
    if (!this.quiet) return false;
    this.quiet = false;
    const ring = this.ring;
    ring.setEventfdEnabled(true);
    if (this.deferTaskrun) ring.getEvents();
    return ring.cqReady > 0;
  }

  /** Keep one read pending on the eventfd while operations are in flight; cancel the stream when
   * none are, so an idle ring never keeps the process alive. While the driver polls, the eventfd
   * stays off; when it stops polling, the eventfd goes back on (and the CQ is looked at again). */
  private arm(): void {
    if (this.closed) return;
    if (!this.spinning && !this.ring.isClosed) {
      try {
        // Completions that came in while the eventfd was off: handle them now (drain starts
        // the poll window again, which keeps the eventfd off).
        let round = 0;
        while (this.unsilence()) {
          this.silence();
          this.drain();
          if (this.spinning) break;
          if (++round === 64) {
            // Completions keep coming: poll from setImmediate (eventfd still off) so other
            // callbacks get their turn.
            this.startSpin();
            break;
          }
        }
      } catch (e) {
        this.onError(e);
      }
    }
    if (this.ring.isClosed || this.ring.ops.inflight === 0) {
      this.disarm();
      return;
    }
    let reader = this.reader;
    if (reader === null) {
      reader = this.reader = Bun.file(this.eventfd).stream().getReader();
      this.reading = false;
    }
    if (!this.reading) {
      this.reading = true;
      reader.read().then(this.onRead, this.onReadError);
    }
  }

  private disarm(): Promise<void> | null {
    const r = this.reader;
    if (r === null) return null;
    this.reader = null;
    this.reading = false;
    // cancel() settles a pending read with done = true and drops Bun's poll of the fd; the fd
    // itself stays open (it is ours).
    return r.cancel().catch(() => {});
  }

  /** Stop: cancel the eventfd stream, unregister and close the eventfd. The ring stays open (its
   * owner closes it). Idempotent. */
  close(): void {
    if (this.closed) return;
    const cancelled = this.disarm();
    this.closed = true;
    if (!this.ring.isClosed) {
      // A later eventfd registered on this ring must not start out silenced.
      if (this.quiet) {
        this.quiet = false;
        this.ring.setEventfdEnabled(true);
      }
      try {
        unregisterEventfd(this.ring);
      } catch {
        // The ring may be mid-teardown; closing the fd detaches it either way.
      }
    }
    // The fd is closed only once Bun has let go of its stream, so Bun never polls a number that
    // a later open() could reuse.
    const fd = this.eventfd;
    // Closed before it leaves the ledger: a Worker terminated in between leaves an entry whose
    // number names another file (or none), which no sweep closes.
    const closeFd = (): void => {
      c.close(fd);
      disownFd(fd);
    };
    if (cancelled === null) closeFd();
    else this.fdReleased = cancelled.then(closeFd);
  }

  /** Settles once close() has closed the eventfd (a tick or so after close() returns, when Bun
   * lets go of its stream). */
  get released(): Promise<void> {
    return this.fdReleased;
  }
}
