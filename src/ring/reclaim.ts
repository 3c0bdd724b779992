// What a terminated Worker leaves open is closed by another thread.
//
// `worker.terminate()` runs no JavaScript in the Worker: no process 'exit' handler, no 'close'
// listener of its own, no FinalizationRegistry callback. Its OS thread exits and its heap is freed,
// while the ring fds, eventfds and sockets it opened stay in the process's fd table, with their
// operations still armed in the kernel (measured with Bun 1.4.5 on Linux 6.18; the evidence is in
// docs/reliability.md). At the thread's exit the kernel cancels only requests that hold io_uring
// files (io_uring_files_cancel, cancel_all false); the rest stay armed, and when one fires later
// its task work runs from the ring's fallback worker, which ends it with -ECANCELED
// (io_should_terminate_tw) without touching its buffer, but posts that CQE into the ring's CQ.
//
// So every thread that loads bun-uring records what it opens in one ledger: a table in anonymous
// native memory, which every thread of the process sees at the same address. Each entry says
// which thread owns the fd (kernel tid plus the thread's start time, so a tid the kernel hands to
// a new thread is not taken for the old one; and the Worker's threadId), what it is, and how to
// recognise it (the device and inode numbers fstat reports, an eventfd's id from fdinfo). A sweep closes the fds of threads that no longer exist, after checking
// that each fd number still names the same open file: a number closed behind the library's back
// and reused names another inode (or another eventfd id), and is left alone, and so is a file
// that a live thread has in the ledger too (a socket adopted by another thread). A dead ring's
// mappings (every mapping of its inode in /proc/self/maps) are unmapped too, since a mapping holds
// the ring file open by itself; closing the last reference makes the kernel cancel the ring's
// requests (io_ring_exit_work).
//
// A Worker can be terminated between the kernel making an fd and the library recording it. For an
// fd made by a syscall (eventfd, socket, io_uring_setup) the entry is claimed first and the
// result stored into it with no function call in between (pendingFd: termination happens only
// where JavaScript checks for it). An fd the kernel makes through the ring (ACCEPT, SOCKET) comes
// in a CQE that the thread copies out of the CQ before it handles it: such operations are
// watched (watchCqeFds), and a sweep reads the dead thread's CQ for the fds it never took.
//
// Memory the kernel may write later (a Worker's provided-buffer rings and their buffers, RecvLoop
// buffers, ZCRX areas: src/ring/worker-memory.ts) is recorded too, as anonymous mappings. No JS
// heap memory is ever handed to the kernel from a Worker for a later write, so a receive that
// completes while the Worker is torn down writes into a mapping that stays. After the thread is
// gone, a sweep releases its mappings' pages (MADV_DONTNEED) and keeps the ranges mapped as
// spares that any thread's next allocation takes again: a JS view of them may have been
// transferred to a live thread (an ArrayBuffer over native memory moves with postMessage), so
// unmapping could fault that thread. A sweep does this only once no io_uring helper thread of
// the dead thread is left (io-wq workers "iou-wrk-<tid>", an SQPOLL thread "iou-sqp-<tid>"):
// after its exit, the thread's own task work ends requests with -ECANCELED (PF_EXITING), the
// fallback runs in a kernel thread (PF_KTHREAD) and does the same, so only those helpers could
// still copy data into its memory (io_should_terminate_tw, io_uring/io-wq.c io_wq_worker).
//
// Sweeps run when a ring is created (in any thread), shortly after a Worker created by a thread
// that has bun-uring loaded exits (process 'worker' event, then the Worker's own 'exit'/'close'),
// and when the application calls reclaimDeadThreads() or reclaimWorker().
//
// Entries are claimed and released with compare-and-swap on their state word (Atomics on a view
// of native memory: every thread's view is the same memory).
import { existsSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { threadId as jsThreadId } from "node:worker_threads";
import { c, getenvNative, setenvNative, viewNative } from "../../ffi/index.ts";
import { MADV_DONTNEED, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "../abi/net.ts";
import { STAT, STAT_SIZE } from "../abi/stat.ts";
import { invalidArgument, shown } from "../error.ts";

/** libc's environment names the ledger's address for the other threads (one name per pid, so a
 * child process that inherits the variable never looks at its parent's address). */
const ENV_PREFIX = "BUN_URING_FD_LEDGER_";
const MAGIC = 0x4255524c;
const LEDGER_VERSION = 1;
/** Entries in the ledger. Past this many fds open at once, new ones are not recorded (and would
 * not be reclaimed after a termination); the table is 1 MiB of address space, touched as used. */
export const LEDGER_CAPACITY = 16384;
const ENTRY_WORDS = 16;
const HEADER_WORDS = 16;
const LEDGER_BYTES = (HEADER_WORDS + LEDGER_CAPACITY * ENTRY_WORDS) * 4;

// Header words.
const H_MAGIC = 0,
  H_VERSION = 1,
  H_PID = 2,
  H_CAPACITY = 3,
  H_HIGH = 4,
  H_NONCE = 5;
// Entry words: the state first (claimed by compare-and-swap), then what the entry records.
const W_STATE = 0,
  W_KIND = 1,
  W_FD = 2,
  W_TID = 3,
  W_JS = 4,
  W_START_LO = 5,
  W_START_HI = 6;
const W_DEV_LO = 7,
  W_DEV_HI = 8,
  W_INO_LO = 9,
  W_INO_HI = 10,
  W_EXTRA = 11,
  W_ADDR_LO = 12,
  W_ADDR_HI = 13,
  W_GEN = 14;
/** 1 while the entry's fd is not confirmed yet: the entry is claimed before the call that makes
 * the fd, and the call's result is stored into it with no function call in between (see
 * pendingFd). A K_CQE entry keeps its CQ's layout in this word instead (see ownRingCq). */
const W_PENDING = 15,
  W_CQ_LAYOUT = 15;
/** A header word that takes the store of a pending fd that has no entry. */
const H_SCRATCH = 14;
/** States: FREE, WRITING (being filled), live (an even value from 2 up that carries the entry's
 * generation, so that a compare-and-swap against a value read earlier fails once the entry was
 * freed and claimed again: no sweeper can take an entry recycled for a live thread), or minus the
 * tid of the thread sweeping it (one whose sweeper was itself terminated half way is taken over
 * by the next sweep). SPARE: an anonymous mapping nobody owns, kept mapped with its pages
 * released, for the next allocation of memory the kernel writes (adoptSpareMemory). */
const FREE = 0,
  WRITING = 1,
  SPARE = 3;
const GEN_MASK = 0x3ffffff;

function isLive(state: number): boolean {
  return state >= 2 && (state & 1) === 0;
}
/** Entry kinds, in the order a sweep handles them: rings first, anonymous memory the rings may
 * write into after every fd. A ring's mappings are found by its inode (see unmapRing). */
const K_RING = 2,
  K_EVENTFD = 3,
  K_SOCKET = 4,
  K_MEMORY = 5;
/** A K_MEMORY entry's length: the words a file entry uses for its device number. */
const W_LEN_LO = W_DEV_LO;
/** An armed ring operation whose CQEs carry new fds (ACCEPT, SOCKET): see watchCqeFds. Its
 * device words hold the operation's user_data, W_EXTRA the CQ position from which its CQEs are
 * not taken yet, W_ADDR the address of the ring's CQ mapping. */
const K_CQE = 6;
const W_UD_LO = W_DEV_LO,
  W_UD_HI = W_DEV_HI,
  W_NEXT = W_EXTRA;
const U32 = 4294967296;
/** An eventfd entry whose id is not read yet (see confirmFd). */
const ID_PENDING = -2;

interface Ledger {
  words: Int32Array;
}

/** What a sweep did. `kept`: entries of dead threads whose fd number names another file now (or
 * a file a live thread also owns); their numbers were not closed. `memory`: anonymous mappings
 * the kernel wrote into, released and kept as spares. `pending` (reclaimWorker only): entries of
 * the Worker whose thread (or one of its io_uring helper threads) was still alive when the wait
 * ended. */
export interface ReclaimReport {
  rings: number;
  mappings: number;
  memory: number;
  eventfds: number;
  sockets: number;
  kept: number;
  pending: number;
}

function emptyReport(): ReclaimReport {
  return { rings: 0, mappings: 0, memory: 0, eventfds: 0, sockets: 0, kept: 0, pending: 0 };
}

let ledger: Ledger | null | undefined;
/** Why the ledger could not be opened (reclaiming is then off in this thread). */
let ledgerProblem = "";

/** This thread: kernel tid, start time (clock ticks after boot, /proc/thread-self/stat field 22). */
const self = { tid: c.gettid(), start: startTimeOf("/proc/thread-self/stat") ?? -1, js: jsThreadId };
/** This thread's entries by fd number. */
const mine = new Map<number, number[]>();
/** This thread's anonymous-memory entries by address: [entry, its live value]. */
const mineMemory = new Map<number, [number, number]>();
/** Where this thread looks for a free entry next. */
let cursor = 0;

const statBuf = new Uint8Array(STAT_SIZE);
const statView = new DataView(statBuf.buffer);

/** Field 22 (starttime) and field 3 (state) of a /proc stat file; null when it cannot be read
 * (the thread is gone). The command name (field 2) may hold spaces and parentheses: fields are
 * counted after its last ')'. */
function readStat(path: string): { state: string; start: number } | null {
  let text: string;
  try {
    text = readFileSync(path, "latin1");
  } catch {
    return null;
  }
  const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const start = Number(rest[19]);
  return Number.isFinite(start) ? { state: rest[0] ?? "", start } : null;
}

function startTimeOf(path: string): number | null {
  return readStat(path)?.start ?? null;
}

/** Whether thread `tid` of this process is the same thread that started at `start` and has not
 * exited (a zombie or dead state counts as exited: it runs no user code any more). */
function threadAlive(tid: number, start: number): boolean {
  const s = readStat(`/proc/self/task/${tid}/stat`);
  return s !== null && s.start === start && s.state !== "Z" && s.state !== "X";
}

/** The mapping of this process that covers `bytes` from `address` (one /proc/self/maps line:
 * its inode and path), or null. Adjacent anonymous mappings may be merged into one line, so the
 * line may be larger than the range. */
function mappingOver(
  maps: string,
  address: number,
  bytes: number,
): { perms: string; inode: number; path: string } | null {
  for (const line of maps.split("\n")) {
    const dash = line.indexOf("-");
    const space = line.indexOf(" ");
    if (dash <= 0 || space <= dash) continue;
    const start = parseInt(line.slice(0, dash), 16);
    const end = parseInt(line.slice(dash + 1, space), 16);
    if (start > address || end < address + bytes) continue;
    const f = line.split(/\s+/);
    return { perms: f[1] ?? "", inode: Number(f[4]), path: f.slice(5).join(" ") };
  }
  return null;
}

function openLedger(): Ledger | null {
  const pid = c.getpid();
  const name = `${ENV_PREFIX}${pid}`;
  if (getenvNative(name) === null) {
    const address = c.mmap(null, LEDGER_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (address === -1) {
      ledgerProblem = "mmap of the fd ledger failed";
      return null;
    }
    const w = new Int32Array(viewNative(address, LEDGER_BYTES));
    const nonce = (Math.random() * 0x7fffffff) | 0;
    w[H_VERSION] = LEDGER_VERSION;
    w[H_PID] = pid;
    w[H_CAPACITY] = LEDGER_CAPACITY;
    w[H_NONCE] = nonce;
    Atomics.store(w, H_MAGIC, MAGIC);
    // Two threads may get here at once: setenv without overwrite keeps the first value, and the
    // thread whose table lost gives its memory back.
    setenvNative(name, `${address}:${nonce}`, false);
    if (getenvNative(name) !== `${address}:${nonce}`) c.munmap(address, LEDGER_BYTES);
  }
  const value = getenvNative(name);
  const m = value === null ? null : /^(\d+):(-?\d+)$/.exec(value);
  if (m === null) {
    ledgerProblem = `${name} does not name a ledger (${value})`;
    return null;
  }
  const address = Number(m[1]);
  // A value this process did not write (a recycled pid that inherited an ancestor's variable)
  // names memory that may not be mapped here: check the mapping before reading it.
  const mapping = mappingOver(readFileSync("/proc/self/maps", "latin1"), address, LEDGER_BYTES);
  if (mapping === null || mapping.inode !== 0 || !mapping.perms.startsWith("rw")) {
    ledgerProblem = `${name} names ${address.toString(16)}, which is not the ledger's mapping in this process`;
    return null;
  }
  const w = new Int32Array(viewNative(address, LEDGER_BYTES));
  if (
    Atomics.load(w, H_MAGIC) !== MAGIC ||
    w[H_PID] !== pid ||
    w[H_NONCE] !== Number(m[2]) ||
    w[H_VERSION] !== LEDGER_VERSION
  ) {
    ledgerProblem = `the memory ${name} names is not a bun-uring ledger of this process`;
    return null;
  }
  return { words: w };
}

/** The ledger's words, for the one store that follows an fd-creating call: `fdLedger[at] = fd`
 * with `at` from pendingFd, with no function call
 * between the call and the store. A Worker is terminated only where its code checks for it (a
 * function's entry, a loop's back edge), never inside a native call nor between two stores, so
 * the fd is in the ledger the moment the call returns. Scratch words while there is no ledger. */
export let fdLedger: Int32Array = new Int32Array(HEADER_WORDS);

function theLedger(): Ledger | null {
  if (ledger === undefined) {
    try {
      ledger = self.start < 0 ? null : openLedger();
      if (ledger !== null) fdLedger = ledger.words;
      if (self.start < 0) ledgerProblem = "/proc/thread-self/stat is not readable";
    } catch (e) {
      ledger = null;
      ledgerProblem = (e as Error)?.message ?? String(e);
    }
  }
  return ledger;
}

/** Whether this thread records its fds (false when the ledger could not be opened, e.g. without
 * /proc; `reason` says why). */
export function ledgerState(): { enabled: boolean; reason: string } {
  return { enabled: theLedger() !== null, reason: ledgerProblem };
}

/** fstat `fd` into statBuf; false when it is not open. */
function statFd(fd: number): boolean {
  return c.fstat(fd, statBuf) === 0;
}

/** The eventfd-id line of an eventfd's fdinfo (Linux 6.0+), or -1. */
function eventfdId(fd: number): number {
  try {
    const m = /eventfd-id:\s*(\d+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, "latin1"));
    return m ? Number(m[1]) : -1;
  } catch {
    return -1;
  }
}

/** Claim a free entry (compare-and-swap FREE → WRITING); -1 when the table is full. record()
 * fills it and publishes it with its next live state (the generation bumped). */
function claim(w: Int32Array): number {
  for (let n = 0; n < LEDGER_CAPACITY; n++) {
    const i = (cursor + n) % LEDGER_CAPACITY;
    const base = HEADER_WORDS + i * ENTRY_WORDS;
    if (w[base + W_STATE] === FREE && Atomics.compareExchange(w, base + W_STATE, FREE, WRITING) === FREE) {
      cursor = (i + 1) % LEDGER_CAPACITY;
      w[base + W_PENDING] = 0;
      // Sweeps look at entries below the high-water mark only.
      for (;;) {
        const high = Atomics.load(w, H_HIGH);
        if (high > i || Atomics.compareExchange(w, H_HIGH, high, i + 1) === high) break;
      }
      return i;
    }
  }
  return -1;
}

/** Record one entry for `fd` from the stat buffer; the state store publishes it. */
function record(kind: number, fd: number, extra: number, address: number): number {
  const L = theLedger();
  if (L === null) return -1;
  const w = L.words;
  const i = claim(w);
  if (i < 0) return -1;
  return fill(w, i, kind, fd, extra, address);
}

/** Fill entry `i` (claimed: WRITING) for this thread and publish it with its next live state. */
function fill(w: Int32Array, i: number, kind: number, fd: number, extra: number, address: number): number {
  const base = HEADER_WORDS + i * ENTRY_WORDS;
  w[base + W_KIND] = kind;
  w[base + W_FD] = fd;
  w[base + W_TID] = self.tid;
  w[base + W_JS] = self.js;
  w[base + W_START_LO] = self.start % U32;
  w[base + W_START_HI] = Math.floor(self.start / U32);
  const memory = kind === K_MEMORY;
  // Anonymous memory names no file: its length (`extra`) takes the device number's words.
  w[base + W_DEV_LO] = memory ? extra % U32 : statView.getUint32(STAT.st_dev, true);
  w[base + W_DEV_HI] = memory ? Math.floor(extra / U32) : statView.getUint32(STAT.st_dev + 4, true);
  w[base + W_INO_LO] = memory ? 0 : statView.getUint32(STAT.st_ino, true);
  w[base + W_INO_HI] = memory ? 0 : statView.getUint32(STAT.st_ino + 4, true);
  w[base + W_EXTRA] = memory ? 0 : extra;
  w[base + W_ADDR_LO] = address % U32;
  w[base + W_ADDR_HI] = Math.floor(address / U32);
  const gen = (w[base + W_GEN]! + 1) & GEN_MASK;
  w[base + W_GEN] = gen;
  const live = 2 + 2 * gen;
  Atomics.store(w, base + W_STATE, live);
  if (kind === K_MEMORY) {
    mineMemory.set(address, [i, live]);
    return i;
  }
  if (fd >= 0) remember(fd, i, live);
  return i;
}

/** This thread's entries by fd number: [entry, its live value] pairs. */
function remember(fd: number, i: number, live: number): void {
  const list = mine.get(fd);
  if (list === undefined) mine.set(fd, [i, live]);
  else list.push(i, live);
}

/** Record that this thread owns socket `fd`, one it adopted or one the kernel made through its
 * ring (an accepted connection, a SOCKET step: see watchCqeFds for the time before this), so
 * that it is closed if the thread ends without closing it. Recording the same fd twice is one
 * entry. fds the thread makes with a syscall go through pendingFd instead. */
export function ownSocket(fd: number): void {
  if (!recorded(fd) && statFd(fd)) record(K_SOCKET, fd, 0, 0);
}

/** The entry's file: the device and inode numbers in the stat buffer. */
function stampFile(w: Int32Array, base: number): void {
  w[base + W_DEV_LO] = statView.getUint32(STAT.st_dev, true);
  w[base + W_DEV_HI] = statView.getUint32(STAT.st_dev + 4, true);
  w[base + W_INO_LO] = statView.getUint32(STAT.st_ino, true);
  w[base + W_INO_HI] = statView.getUint32(STAT.st_ino + 4, true);
}

/** Claim this thread's entry for an fd about to be made (eventfd(2), socket(2), io_uring_setup).
 * Returns the word the call's result goes into at once (`fdLedger[at] = fd`, see fdLedger); then
 * confirmFd. A Worker terminated between the two leaves an entry whose fd a sweep closes once
 * /proc/self/fd shows that number is still a file of that kind no live thread records. */
export function pendingFd(kind: "eventfd" | "socket" | "ring"): number {
  statBuf.fill(0);
  const i = record(kind === "ring" ? K_RING : kind === "eventfd" ? K_EVENTFD : K_SOCKET, -1, 0, 0);
  if (i < 0) return H_SCRATCH;
  const base = HEADER_WORDS + i * ENTRY_WORDS;
  ledger!.words[base + W_PENDING] = 1;
  return base + W_FD;
}

/** The call pendingFd's entry (`at`) was claimed for returned `fd`, already stored there: the
 * entry gets the file's identity and counts as recorded; a failed call (fd < 0) frees it. */
export function confirmFd(at: number, fd: number): void {
  if (at === H_SCRATCH) return;
  const w = ledger!.words;
  const base = at - W_FD;
  const i = (base - HEADER_WORDS) / ENTRY_WORDS;
  const live = Atomics.load(w, base + W_STATE);
  if (fd < 0 || !statFd(fd)) {
    Atomics.compareExchange(w, base + W_STATE, live, FREE);
    if (i < cursor) cursor = i;
    return;
  }
  // Entries this thread still had for the number name a file closed behind the library's back.
  disownFd(fd);
  stampFile(w, base);
  const eventfd = w[base + W_KIND] === K_EVENTFD;
  // The eventfd's id (a /proc read) comes after it counts as recorded (see sameFile).
  if (eventfd) w[base + W_EXTRA] = ID_PENDING;
  w[base + W_PENDING] = 0;
  remember(fd, i, live);
  if (eventfd) w[base + W_EXTRA] = eventfdId(fd);
}

/** Where this thread reads the CQ of one of its rings: the kernel memory mapped at `address`
 * (`bytes` long), a view of it, the head and tail word indexes, the ring's inode and the layout
 * word its K_CQE entries carry. */
interface CqPlace {
  address: number;
  view: Uint32Array;
  head: number;
  tail: number;
  inoLo: number;
  inoHi: number;
  layout: number;
}
const cqPlaces = new Map<number, CqPlace>();
/** This thread's K_CQE entries: entry → [its live value, its ring fd]. */
const watches = new Map<number, [number, number]>();

/** Record where the CQ of this thread's ring `fd` lives: in its mapping of kernel memory at
 * `address` (`bytes` long), with the CQ head, tail and CQE array at byte offsets `head`, `tail`
 * and `cqes`, `entries` CQEs of `cqeBytes` (16 or 32). Only such a ring's fd-creating operations
 * are watched (watchCqeFds): a ring in library memory goes with a terminated Worker's heap, and
 * one with mixed-size CQEs has no fixed place per CQE. */
export function ownRingCq(
  fd: number,
  address: number,
  bytes: number,
  o: { head: number; tail: number; cqes: number; entries: number; cqeBytes: number },
): void {
  const log2 = Math.log2(o.entries);
  if (!mine.has(fd) || !statFd(fd) || !Number.isInteger(log2) || o.tail % 4 !== 0 || o.tail >= 4096) return;
  if (o.cqes % 64 !== 0 || o.cqes >= 65536 || o.cqes + o.entries * o.cqeBytes > bytes) return;
  cqPlaces.set(fd, {
    address,
    view: new Uint32Array(viewNative(address, bytes)),
    head: o.head / 4,
    tail: o.tail / 4,
    inoLo: statView.getUint32(STAT.st_ino, true),
    inoHi: statView.getUint32(STAT.st_ino + 4, true),
    layout: o.tail / 4 + (o.cqes / 64) * 1024 + log2 * 2 ** 20 + (o.cqeBytes === 32 ? 2 ** 25 : 0),
  });
}

/** The CQ layout a K_CQE entry carries: tail word index, CQE array word index, CQ size, words per
 * CQE. */
function cqLayout(layout: number): { tail: number; cqes: number; entries: number; words: number } {
  return {
    tail: layout & 0x3ff,
    cqes: ((layout >>> 10) & 0x3ff) * 16,
    entries: 2 ** ((layout >>> 20) & 0x1f),
    words: layout & (1 << 25) ? 8 : 4,
  };
}

/** Watch an operation whose CQEs carry new fds (ACCEPT, SOCKET), armed on this thread's ring
 * `ringFd` with `userData`, before it is submitted. The kernel installs each fd when it posts the
 * CQE; the thread copies CQEs out of the CQ in batches and runs their handlers after, and a Worker
 * terminated in between never records the fd. Until the thread marks a CQE taken (cqeTaken, after
 * the fd is in the ledger), a sweep finds such fds in the dead thread's CQ. Returns the watch, or
 * -1 when the ring's CQ is not recorded (see ownRingCq). */
export function watchCqeFds(ringFd: number, userData: number): number {
  const q = cqPlaces.get(ringFd);
  if (q === undefined) return -1;
  const w = ledger!.words;
  const i = claim(w);
  if (i < 0) return -1;
  fill(w, i, K_CQE, -1, Atomics.load(q.view, q.tail), q.address);
  const base = HEADER_WORDS + i * ENTRY_WORDS;
  w[base + W_FD] = ringFd;
  w[base + W_UD_LO] = userData % U32;
  w[base + W_UD_HI] = Math.floor(userData / U32);
  w[base + W_INO_LO] = q.inoLo;
  w[base + W_INO_HI] = q.inoHi;
  w[base + W_CQ_LAYOUT] = q.layout;
  watches.set(i, [Atomics.load(w, base + W_STATE), ringFd]);
  return i;
}

/** The fd of CQE `index` of ring `ringFd`'s batch (`count` CQEs copied by one advance of the CQ
 * head) is in the ledger now, or closed: the watch's CQEs up to it are taken. */
export function cqeTaken(watch: number, ringFd: number, count: number, index: number): void {
  const q = cqPlaces.get(ringFd);
  if (watch < 0 || q === undefined) return;
  ledger!.words[HEADER_WORDS + watch * ENTRY_WORDS + W_NEXT] = q.view[q.head]! - count + index + 1;
}

/** The watched operation ended (its last CQE handled): forget the watch. */
export function unwatchCqeFds(watch: number): void {
  const e = watches.get(watch);
  if (e === undefined) return;
  watches.delete(watch);
  Atomics.compareExchange(ledger!.words, HEADER_WORDS + watch * ENTRY_WORDS + W_STATE, e[0], FREE);
  if (watch < cursor) cursor = watch;
}

/** fds a dead thread's watched operation (K_CQE entry at `base`) made that the thread never took,
 * each with its CQE's position, in pairs: results >= 0 of CQEs with its user_data from its first
 * untaken position to the CQ tail (at most one CQ's worth back: older slots may hold newer
 * CQEs). The caller holds the entry of the dead thread's ring: only a sweeper that holds it
 * unmaps the ring's memory (unmapRing), so the range, checked here to be that ring's mapping, stays
 * mapped while it is read. */
function untakenFds(w: Int32Array, base: number): number[] {
  const { tail: tailAt, cqes, entries, words } = cqLayout(w[base + W_CQ_LAYOUT]!);
  const address = u64(w, base, W_ADDR_LO);
  const bytes = (cqes + entries * words) * 4;
  const m = mappingOver(readFileSync("/proc/self/maps", "latin1"), address, bytes);
  if (m === null || m.inode !== u64(w, base, W_INO_LO) || !m.path.includes("io_uring")) return [];
  const cq = new Uint32Array(viewNative(address, bytes));
  const tail = Atomics.load(cq, tailAt);
  let p = w[base + W_NEXT]! >>> 0;
  if ((tail - p) >>> 0 > entries) p = (tail - entries) >>> 0;
  const lo = w[base + W_UD_LO]! >>> 0,
    hi = w[base + W_UD_HI]! >>> 0;
  const fds: number[] = [];
  for (; p !== tail; p = (p + 1) >>> 0) {
    const k = cqes + (p & (entries - 1)) * words;
    if (cq[k] === lo && cq[k + 1] === hi && (cq[k + 2]! | 0) >= 0) fds.push(cq[k + 2]!, p);
  }
  return fds;
}

/** What a dead thread's fd number names now, if it is a file of `kind` (/proc/self/fd): its key
 * (see fileKey), else null. */
function keyIfKind(fd: number, kind: number): string | null {
  let link: string;
  try {
    link = readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return null;
  }
  const want = kind === K_RING ? "anon_inode:[io_uring]" : kind === K_EVENTFD ? "anon_inode:[eventfd]" : "socket:[";
  if (!link.startsWith(want) || !statFd(fd)) return null;
  const key = `${statU64(STAT.st_dev)}:${statU64(STAT.st_ino)}`;
  return kind === K_EVENTFD ? `${key}:${eventfdId(fd)}` : key;
}

/** Record an anonymous mapping this thread made for memory the kernel may write later (see
 * src/ring/worker-memory.ts). False when it could not be recorded (no ledger, or the table is
 * full): the caller then keeps it mapped for the life of the process. */
export function ownMemory(address: number, byteLength: number): boolean {
  return record(K_MEMORY, -1, byteLength, address) >= 0;
}

/** Take a spare mapping of at least `byteLength` bytes (the smallest that fits) for this thread,
 * or null when there is none. Its pages were released: it reads as zeros. */
export function adoptSpareMemory(byteLength: number): { address: number; byteLength: number } | null {
  const L = theLedger();
  if (L === null) return null;
  const w = L.words;
  for (;;) {
    const high = Atomics.load(w, H_HIGH);
    let best = -1,
      bestBytes = Infinity;
    for (let i = 0; i < high; i++) {
      const base = HEADER_WORDS + i * ENTRY_WORDS;
      if (Atomics.load(w, base + W_STATE) !== SPARE) continue;
      const bytes = u64(w, base, W_LEN_LO);
      if (bytes >= byteLength && bytes < bestBytes) {
        best = i;
        bestBytes = bytes;
      }
    }
    if (best < 0) return null;
    const base = HEADER_WORDS + best * ENTRY_WORDS;
    // Another thread may take the same spare first: then look again.
    if (Atomics.compareExchange(w, base + W_STATE, SPARE, WRITING) !== SPARE) continue;
    const address = u64(w, base, W_ADDR_LO);
    fill(w, best, K_MEMORY, -1, bestBytes, address);
    return { address, byteLength: bestBytes };
  }
}

/** This thread is done with its mapping at `address`, whose pages it released and whose JS
 * views it detached: it becomes a spare (`keep` false), or, when a view may still reach it (its
 * ArrayBuffer was transferred away), leaves the ledger and stays mapped as it is (`keep` true).
 * False when the ledger does not hold it. */
export function releaseMemory(address: number, keep: boolean): boolean {
  const e = mineMemory.get(address);
  if (e === undefined) return false;
  mineMemory.delete(address);
  const [i, live] = e;
  Atomics.compareExchange(ledger!.words, HEADER_WORDS + i * ENTRY_WORDS + W_STATE, live, keep ? FREE : SPARE);
  if (keep && i < cursor) cursor = i;
  return true;
}

/** Whether an io_uring helper thread of this process outlives the thread that created it. io-wq
 * workers and SQPOLL threads are named after their creator ("iou-wrk-<pid>", "iou-sqp-<pid>",
 * io_uring/io-wq.c io_wq_worker, io_uring/sqpoll.c io_sq_thread) with its pid as the kernel's
 * own namespace sees it; in a pid namespace that is not the number /proc/self/task shows here,
 * so every helper then counts as orphaned, and dead threads' memory waits (never released too
 * early). Also true when /proc cannot be read. */
function orphanedIoHelpers(): boolean {
  let tasks: string[];
  try {
    tasks = readdirSync("/proc/self/task");
  } catch {
    return true;
  }
  const live = new Set(tasks);
  for (const t of tasks) {
    let comm = "";
    try {
      comm = readFileSync(`/proc/self/task/${t}/comm`, "latin1");
    } catch {
      continue;
    }
    const m = /^iou-(?:wrk|sqp)-(\d+)/.exec(comm);
    if (m !== null && !live.has(m[1]!)) return true;
  }
  return false;
}

/** Whether this thread's entries for `fd` name the file it is now. A number this thread recorded,
 * then closed behind the library's back and got again for a new file, loses its old entries. */
function recorded(fd: number): boolean {
  const list = mine.get(fd);
  if (list === undefined) return false;
  const w = ledger!.words;
  const last = HEADER_WORDS + list[list.length - 2]! * ENTRY_WORDS;
  if (Atomics.load(w, last + W_STATE) === list[list.length - 1] && sameFile(w, last, fd)) return true;
  disownFd(fd);
  return false;
}

/** This thread closes `fd` itself (or has just closed it): forget its entries. */
export function disownFd(fd: number): void {
  // A ring going: so do the watches of its operations (those the ring's close did not end).
  if (cqPlaces.delete(fd)) for (const [watch, [, ring]] of watches) if (ring === fd) unwatchCqeFds(watch);
  const list = mine.get(fd);
  if (list === undefined) return;
  mine.delete(fd);
  const w = ledger!.words;
  for (let k = 0; k < list.length; k += 2) {
    const i = list[k]!;
    Atomics.compareExchange(w, HEADER_WORDS + i * ENTRY_WORDS + W_STATE, list[k + 1]!, FREE);
    // Low entries are taken again first, so the part of the table a sweep reads stays as small
    // as the most fds open at once.
    if (i < cursor) cursor = i;
  }
}

function u64(w: Int32Array, base: number, lo: number): number {
  return (w[base + lo + 1]! >>> 0) * U32 + (w[base + lo]! >>> 0);
}

/** dev:ino of an entry (and an eventfd's id: every eventfd has the same inode), the key under
 * which two entries name the same file. */
function fileKey(w: Int32Array, base: number): string {
  const key = `${u64(w, base, W_DEV_LO)}:${u64(w, base, W_INO_LO)}`;
  return w[base + W_KIND] === K_EVENTFD ? `${key}:${w[base + W_EXTRA]}` : key;
}

/** A 64-bit field of the stat buffer. */
function statU64(at: number): number {
  return statView.getUint32(at + 4, true) * U32 + statView.getUint32(at, true);
}

/** Whether `fd` still names the file the entry recorded. */
function sameFile(w: Int32Array, base: number, fd: number): boolean {
  if (!statFd(fd)) return false;
  if (
    statView.getUint32(STAT.st_dev, true) !== w[base + W_DEV_LO]! >>> 0 ||
    statView.getUint32(STAT.st_dev + 4, true) !== w[base + W_DEV_HI]! >>> 0
  )
    return false;
  if (
    statView.getUint32(STAT.st_ino, true) !== w[base + W_INO_LO]! >>> 0 ||
    statView.getUint32(STAT.st_ino + 4, true) !== w[base + W_INO_HI]! >>> 0
  )
    return false;
  // Every eventfd shares one anonymous inode: its id tells two apart.
  // An id still pending: the owner died between recording the eventfd and reading its id, so the
  // number was never closed by it and still names that eventfd.
  return w[base + W_KIND] !== K_EVENTFD || w[base + W_EXTRA] === ID_PENDING || eventfdId(fd) === w[base + W_EXTRA];
}

/** Close the fds (and unmap the ring regions) of threads that no longer exist. Safe to call at any
 * time from any thread: fds of live threads are never touched, and a dead thread's fd number is
 * closed only if it still names the file that thread opened. */
export function reclaimDeadThreads(): ReclaimReport {
  const report = emptyReport();
  const L = theLedger();
  if (L === null) return report;
  const w = L.words;
  const high = Atomics.load(w, H_HIGH);
  const alive = new Map<string, boolean>();
  const liveFiles = new Set<string>();
  // Numbers of fds live threads made and have not confirmed yet (see pendingFd).
  const liveNumbers = new Set<number>();
  const dead: number[] = [];
  // The state each dead entry had when it was looked at: it is taken only if it still has it.
  const seen = new Map<number, number>();
  for (let i = 0; i < high; i++) {
    const base = HEADER_WORDS + i * ENTRY_WORDS;
    const state = Atomics.load(w, base + W_STATE);
    if (state < 0 && -state !== self.tid && !existsSync(`/proc/self/task/${-state}`)) {
      dead.push(i);
      seen.set(i, state);
    }
    if (!isLive(state)) continue;
    const tid = w[base + W_TID]!;
    const start = u64(w, base, W_START_LO);
    const who = `${tid}:${start}`;
    let up = alive.get(who);
    if (up === undefined) {
      up = (tid === self.tid && start === self.start) || threadAlive(tid, start);
      alive.set(who, up);
    }
    if (up) {
      const kind = w[base + W_KIND]!;
      if (kind === K_MEMORY || kind === K_CQE) continue;
      if (w[base + W_PENDING] === 1) liveNumbers.add(w[base + W_FD]!);
      else liveFiles.add(fileKey(w, base));
    } else {
      dead.push(i);
      seen.set(i, state);
    }
  }
  if (dead.length === 0) return report;
  sweepCqes(w, dead, seen, liveFiles, liveNumbers, report);
  dead.sort((a, b) => w[HEADER_WORDS + a * ENTRY_WORDS + W_KIND]! - w[HEADER_WORDS + b * ENTRY_WORDS + W_KIND]!);
  let maps: string | null = null;
  let orphans: boolean | null = null;
  // Ids of the dead threads' eventfds (see closeEventfdCopies).
  const eventfdIds = new Set<number>();
  for (const i of dead) {
    const base = HEADER_WORDS + i * ENTRY_WORDS;
    // One sweeper per entry: the one whose compare-and-swap takes it (from the live value seen, or from a dead
    // sweeper). Each entry is taken just before it is handled, so a sweeper terminated half way
    // leaves at most this one behind for the next.
    // Watched operations are sweepCqes' alone.
    if (w[base + W_KIND] === K_CQE) continue;
    const state = seen.get(i)!;
    if (Atomics.compareExchange(w, base + W_STATE, state, -self.tid) !== state) continue;
    const kind = w[base + W_KIND]!;
    const fd = w[base + W_FD]!;
    if (kind === K_MEMORY) {
      // Rings this sweep closed come first (kinds sorted). While a helper thread of a dead
      // thread is left, it may still copy into the memory: the entry gets its live value back
      // for a later sweep.
      orphans ??= orphanedIoHelpers();
      if (orphans) {
        Atomics.store(w, base + W_STATE, state);
        continue;
      }
      maps ??= readFileSync("/proc/self/maps", "latin1");
      const address = u64(w, base, W_ADDR_LO);
      const bytes = u64(w, base, W_LEN_LO);
      const m = mappingOver(maps, address, bytes);
      // Still an anonymous read-write range (only the library maps and keeps these; were it gone,
      // the entry has nothing left to name).
      if (m !== null && m.inode === 0 && m.perms.startsWith("rw") && c.madvise(address, bytes, MADV_DONTNEED) === 0) {
        report.memory++;
        Atomics.store(w, base + W_STATE, SPARE);
      } else {
        report.kept++;
        Atomics.store(w, base + W_STATE, FREE);
      }
      continue;
    }
    if (fd < 0) {
      // Claimed for a call that never returned (see pendingFd).
    } else if (w[base + W_PENDING] === 1) {
      // Made, and the thread ended before it confirmed the fd: the number still names what it
      // made unless it is not of that kind now, or a live thread has it.
      const key = liveNumbers.has(fd) ? null : keyIfKind(fd, kind);
      if (key !== null && !liveFiles.has(key)) {
        // Confirmed on the dead thread's behalf before it is closed: a sweep that takes the entry
        // over from this one, cut short, checks the file before it closes the number again.
        stampFile(w, base);
        if (kind === K_EVENTFD) w[base + W_EXTRA] = Number(key.split(":")[2]);
        w[base + W_PENDING] = 0;
        if (kind === K_EVENTFD) eventfdIds.add(Number(key.split(":")[2]));
        if (kind === K_RING) unmapRing((maps ??= readFileSync("/proc/self/maps", "latin1")), key, report);
        closeFor(fd, kind, report);
      } else report.kept++;
    } else {
      if (kind === K_EVENTFD && w[base + W_EXTRA]! >= 0) eventfdIds.add(w[base + W_EXTRA]!);
      const key = fileKey(w, base);
      // A dead ring's mappings go even when its number was closed already: they hold it open.
      if (kind === K_RING && !liveFiles.has(key))
        unmapRing((maps ??= readFileSync("/proc/self/maps", "latin1")), key, report);
      if (sameFile(w, base, fd) && !liveFiles.has(key)) closeFor(fd, kind, report);
      else report.kept++;
    }
    Atomics.store(w, base + W_STATE, FREE);
  }
  closeEventfdCopies(eventfdIds, liveFiles, report);
  return report;
}

/** Bun reads the loop driver's eventfd through a copy of the fd it makes itself (dup(2): a
 * Bun.file(fd) stream, src/loop/driver.ts) and closes when the stream ends; a Worker terminated
 * while its stream starts or stops leaves that copy open. fds that name one of the dead threads'
 * eventfds (the same eventfd id), and no live thread's, are closed with them. */
function closeEventfdCopies(ids: Set<number>, liveFiles: Set<string>, report: ReclaimReport): void {
  if (ids.size === 0) return;
  let names: string[];
  try {
    names = readdirSync("/proc/self/fd");
  } catch {
    return;
  }
  for (const name of names) {
    const fd = Number(name);
    const key = keyIfKind(fd, K_EVENTFD);
    if (key !== null && !liveFiles.has(key) && ids.has(Number(key.split(":")[2]))) closeFor(fd, K_EVENTFD, report);
  }
}

/** Unmap every mapping of the ring whose file key (device:inode) is `key`: a dead thread's ring,
 * whose mappings hold it open after its fd is closed (and may have been made just before the
 * thread ended, with nothing recorded yet). `maps` is /proc/self/maps. */
function unmapRing(maps: string, key: string, report: ReclaimReport): void {
  const ino = Number(key.slice(key.indexOf(":") + 1));
  for (const line of maps.split("\n")) {
    const f = line.split(/\s+/);
    if (Number(f[4]) !== ino || !line.includes("io_uring")) continue;
    const dash = line.indexOf("-");
    const start = parseInt(line.slice(0, dash), 16);
    const end = parseInt(line.slice(dash + 1, line.indexOf(" ")), 16);
    if (c.munmap(start, end - start) === 0) report.mappings++;
  }
}

function closeFor(fd: number, kind: number, report: ReclaimReport): void {
  c.close(fd);
  if (kind === K_RING) report.rings++;
  else if (kind === K_EVENTFD) report.eventfds++;
  else report.sockets++;
}

/** The first part of a sweep: dead threads' watched operations (K_CQE), while their rings are
 * still mapped. An fd in a CQE that a dead thread copied out of its CQ and never handled is in no
 * entry; it is closed if its number still names a socket that no entry records (a dead thread's
 * recorded fds are closed by their own entries, after). */
function sweepCqes(
  w: Int32Array,
  dead: number[],
  seen: Map<number, number>,
  liveFiles: Set<string>,
  liveNumbers: Set<number>,
  report: ReclaimReport,
): void {
  const deadFiles = new Set<string>();
  const offLimits = new Set(liveNumbers);
  // The dead rings' entries, by owner and fd number.
  const rings = new Map<string, number>();
  const ringOf = (base: number): string =>
    `${w[base + W_TID]}:${u64(w, base, W_START_LO)}:${w[base + W_FD]}:${u64(w, base, W_INO_LO)}`;
  for (const i of dead) {
    const base = HEADER_WORDS + i * ENTRY_WORDS;
    const kind = w[base + W_KIND]!;
    if (kind === K_MEMORY || kind === K_CQE) continue;
    if (kind === K_RING) rings.set(ringOf(base), i);
    if (w[base + W_PENDING] === 1) offLimits.add(w[base + W_FD]!);
    else deadFiles.add(fileKey(w, base));
  }
  for (const i of dead) {
    const base = HEADER_WORDS + i * ENTRY_WORDS;
    if (w[base + W_KIND] !== K_CQE) continue;
    // The ring's entry is held while its CQ is read (see untakenFds), then given back for the
    // rest of the sweep. Without it the CQ is not read: the entry goes once the ring's memory is
    // gone, and stays for a later sweep while another sweeper has the ring.
    const r = rings.get(ringOf(base));
    const ringBase = HEADER_WORDS + (r ?? 0) * ENTRY_WORDS;
    const ringState = r === undefined ? 0 : seen.get(r)!;
    if (r === undefined || Atomics.compareExchange(w, ringBase + W_STATE, ringState, -self.tid) !== ringState) {
      const cq = mappingOver(readFileSync("/proc/self/maps", "latin1"), u64(w, base, W_ADDR_LO), 1);
      if (cq === null || cq.inode !== u64(w, base, W_INO_LO))
        Atomics.compareExchange(w, base + W_STATE, seen.get(i)!, FREE);
      continue;
    }
    const state = seen.get(i)!;
    const found = Atomics.compareExchange(w, base + W_STATE, state, -self.tid) === state ? untakenFds(w, base) : null;
    if (found === null) {
      Atomics.store(w, ringBase + W_STATE, ringState);
      continue;
    }
    for (let k = 0; k < found.length; k += 2) {
      const fd = found[k]!;
      const key = offLimits.has(fd) ? null : keyIfKind(fd, K_SOCKET);
      if (key !== null && deadFiles.has(key)) continue;
      if (key === null || liveFiles.has(key)) report.kept++;
      else {
        // Taken before it is closed: a sweep that takes the entry over from this one, cut short,
        // never closes the number again (it may name another file by then).
        w[base + W_NEXT] = found[k + 1]! + 1;
        closeFor(fd, K_SOCKET, report);
        offLimits.add(fd);
      }
    }
    Atomics.store(w, base + W_STATE, FREE);
    Atomics.store(w, ringBase + W_STATE, ringState);
  }
}

/** Entries of Worker `js` (its threadId) still recorded: owned by a live thread, or being swept. */
function entriesOf(js: number): number {
  const L = theLedger();
  if (L === null) return 0;
  const w = L.words;
  const high = Atomics.load(w, H_HIGH);
  let n = 0;
  for (let i = 0; i < high; i++) {
    const base = HEADER_WORDS + i * ENTRY_WORDS;
    const s = Atomics.load(w, base + W_STATE);
    if ((isLive(s) || s < 0) && w[base + W_JS] === js) n++;
  }
  return n;
}

/** One ledger entry as ledgerEntries shows it. `address`: a mapping's start (0 for an fd);
 * `bytes`: an anonymous mapping's length (0 for the other kinds). */
export interface LedgerEntry {
  state: string;
  kind: string;
  fd: number;
  tid: number;
  threadId: number;
  address: number;
  bytes: number;
}

/** The ledger's entries that are not free, for diagnostics: state ("writing", "live", "spare"
 * or "swept by <tid>"), kind, fd, owner tid and Worker threadId, and a mapping's range. */
export function ledgerEntries(): LedgerEntry[] {
  const L = theLedger();
  if (L === null) return [];
  const w = L.words;
  const out: LedgerEntry[] = [];
  const high = Atomics.load(w, H_HIGH);
  for (let i = 0; i < high; i++) {
    const base = HEADER_WORDS + i * ENTRY_WORDS;
    const st = Atomics.load(w, base + W_STATE);
    if (st === FREE) continue;
    const kind = ["", "", "ring", "eventfd", "socket", "memory", "cqe"][w[base + W_KIND]!] || "?";
    out.push({
      state: st === WRITING ? "writing" : st === SPARE ? "spare" : isLive(st) ? "live" : `swept by ${-st}`,
      kind,
      fd: w[base + W_FD]!,
      tid: w[base + W_TID]!,
      threadId: w[base + W_JS]!,
      address: u64(w, base, W_ADDR_LO),
      bytes: w[base + W_KIND] === K_MEMORY ? u64(w, base, W_LEN_LO) : 0,
    });
  }
  return out;
}

function addReport(into: ReclaimReport, r: ReclaimReport): void {
  into.rings += r.rings;
  into.mappings += r.mappings;
  into.memory += r.memory;
  into.eventfds += r.eventfds;
  into.sockets += r.sockets;
  into.kept += r.kept;
}

const POLL_MS = 10;

/** Close what a Worker leaves open when it is terminated: call it just before
 * `worker.terminate()` (from then on the Worker's threadId reads -1), or give the threadId read
 * before. It waits until the Worker's thread is gone (its 'close'/'exit' event may come before the
 * thread has exited), then closes the rings, eventfds and sockets the Worker left open. Resolves
 * with what was closed; `pending` counts entries of the Worker whose thread was still running
 * after `timeoutMs` (a Worker that was not terminated). */
export function reclaimWorker(worker: { threadId: number } | number, timeoutMs = 5000): Promise<ReclaimReport> {
  const js =
    typeof worker === "number" ? worker : typeof worker === "object" && worker !== null ? worker.threadId : worker;
  if (js === -1)
    throw invalidArgument(
      "reclaimWorker",
      "the Worker's threadId reads -1: it was terminated already; call reclaimWorker(worker) before terminate(), pass the threadId read before, or call reclaimDeadThreads() once its thread is gone",
    );
  if (typeof js !== "number" || !Number.isInteger(js) || js < 0)
    throw invalidArgument("reclaimWorker", `needs a Worker or its threadId (an integer >= 0), got ${shown(js)}`);
  if (js === jsThreadId)
    throw invalidArgument(
      "reclaimWorker",
      `threadId ${js} is the calling thread: what it owns is live; reclaimWorker is for a Worker that ends`,
    );
  if (!(timeoutMs >= 0) || !Number.isFinite(timeoutMs))
    throw invalidArgument("reclaimWorker", `timeoutMs must be a finite number >= 0, got ${shown(timeoutMs)}`);
  const report = emptyReport();
  const deadline = performance.now() + timeoutMs;
  return new Promise<ReclaimReport>((resolve) => {
    const round = (): void => {
      addReport(report, reclaimDeadThreads());
      const left = entriesOf(js);
      if (left === 0 || performance.now() >= deadline) {
        report.pending = left;
        resolve(report);
        return;
      }
      // Unref'd: waiting for a thread to go never keeps the process alive.
      (setTimeout(round, POLL_MS) as { unref?: () => void }).unref?.();
    };
    round();
  });
}

/** Workers this thread creates are watched from here on: when one exits, what it left is swept
 * (Bun emits process 'worker' for the global Worker and node:worker_threads alike; the first has
 * a 'close' event, the second an 'exit' event). */
function watchWorkers(): void {
  const onWorker = (w: {
    threadId?: number;
    once?: (ev: string, f: () => void) => unknown;
    addEventListener?: (ev: string, f: () => void, o?: { once: boolean }) => void;
  }): void => {
    const js = w?.threadId;
    if (typeof js !== "number") return;
    // A thread that does not end within a minute is left to the next sweep.
    const done = (): void => {
      if (entriesOf(js) > 0) void reclaimWorker(js, 60_000);
    };
    if (typeof w.once === "function") w.once("exit", done);
    else if (typeof w.addEventListener === "function") w.addEventListener("close", done, { once: true });
  };
  (process as unknown as { on(ev: string, f: typeof onWorker): void }).on("worker", onWorker);
}

watchWorkers();
