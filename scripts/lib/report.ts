// One result row shape for the lab tools' senders and receivers (tx, tx -R, rx), printed as a
// fixed-width line the moment a run ends, so a later failure never hides an earlier result.

export interface LabRow {
  role: "send" | "receive";
  proto: "tcp" | "udp";
  family: "ipv4" | "ipv6";
  /** tx mode (nonzc, zc, ...), "bun" for Bun's own sockets, or the receive path ("recv", "zcrx"). */
  mode: string;
  /** Bytes per send (sender) or per datagram (UDP receiver); null where it varies. */
  size: number | null;
  bytes: number;
  seconds: number;
  mb_s: number;
  /** Sends (sender), datagrams (UDP receiver) or receive completions (TCP receiver). */
  ops: number;
  cpu_user_s: number;
  cpu_sys_s: number;
  /** CPU time over wall time, in percent of one core. */
  cpu_pct: number;
  /** Shares of the sent bytes the kernel sent without a copy / copied (IORING_SEND_ZC_REPORT_USAGE);
   * null where nothing reports it (receivers, --no-report-usage, Bun's sockets). */
  zc_pct: number | null;
  copied_pct: number | null;
  errors: number;
  note: string;
}

export const MB = 1e6;

/** CPU seconds used by this process so far (user, system). */
export function cpuNow(): { user: number; sys: number } {
  const u = process.resourceUsage();
  return { user: u.userCPUTime / 1e6, sys: u.systemCPUTime / 1e6 };
}

/** Measures a window: call `stop` at its end to get seconds and CPU used in it. */
export function startWindow(): () => { seconds: number; cpu_user_s: number; cpu_sys_s: number; cpu_pct: number } {
  const t0 = performance.now();
  const c0 = cpuNow();
  return () => {
    const seconds = (performance.now() - t0) / 1000;
    const c1 = cpuNow();
    const user = c1.user - c0.user,
      sys = c1.sys - c0.sys;
    return { seconds, cpu_user_s: user, cpu_sys_s: sys, cpu_pct: seconds > 0 ? ((user + sys) / seconds) * 100 : 0 };
  };
}

/** A row where nothing reports zero-copy usage (receivers, Bun's own sockets), from the measured
 * window `w` of a startWindow(). */
export function unreportedRow(
  head: Pick<LabRow, "role" | "proto" | "family" | "mode" | "size">,
  bytes: number,
  ops: number,
  w: ReturnType<ReturnType<typeof startWindow>>,
  note: string,
): LabRow {
  return {
    ...head,
    bytes,
    seconds: w.seconds,
    mb_s: w.seconds > 0 ? bytes / MB / w.seconds : 0,
    ops,
    cpu_user_s: w.cpu_user_s,
    cpu_sys_s: w.cpu_sys_s,
    cpu_pct: w.cpu_pct,
    zc_pct: null,
    copied_pct: null,
    errors: 0,
    note,
  };
}

/** Percent with one decimal; 0 of 0 is 0. */
export function pct(part: number, total: number): number {
  return total > 0 ? Math.round((part / total) * 1000) / 10 : 0;
}

/** "-" where the kernel did not report usage. */
export function pctCell(v: number | null): string {
  return v === null ? "-" : v.toFixed(1);
}

/** The mode, and "(copied)" where a zero-copy mode's bytes were all copied by the kernel, so no
 * row reads as zero-copy while its copied % says 100. */
function modeCell(r: LabRow): string {
  const zeroCopyMode = r.role === "send" && r.mode !== "nonzc" && r.mode !== "bun";
  return zeroCopyMode && r.copied_pct !== null && r.copied_pct >= 99.95 ? `${r.mode} (copied)` : r.mode;
}

const COLUMNS: Array<[header: string, width: number, cell: (r: LabRow) => string]> = [
  ["mode", 17, modeCell],
  ["size", 7, (r) => (r.size === null ? "-" : String(r.size))],
  ["bytes", 13, (r) => String(r.bytes)],
  ["s", 6, (r) => r.seconds.toFixed(2)],
  ["MB/s", 9, (r) => r.mb_s.toFixed(1)],
  ["ops/s", 9, (r) => String(Math.round(r.seconds > 0 ? r.ops / r.seconds : 0))],
  ["CPU %", 6, (r) => r.cpu_pct.toFixed(0)],
  ["user s", 7, (r) => r.cpu_user_s.toFixed(2)],
  ["sys s", 7, (r) => r.cpu_sys_s.toFixed(2)],
  ["zc %", 6, (r) => pctCell(r.zc_pct)],
  ["copied %", 8, (r) => pctCell(r.copied_pct)],
  ["errors", 6, (r) => String(r.errors)],
];

/** The header line of the row table. */
export function rowHeader(): string {
  return COLUMNS.map(([h, w], i) => (i === 0 ? h.padEnd(w) : h.padStart(w))).join("  ") + "  note";
}

/** One result as a line under rowHeader(). */
export function rowLine(r: LabRow): string {
  return (
    COLUMNS.map(([, w, cell], i) => (i === 0 ? cell(r).padEnd(w) : cell(r).padStart(w))).join("  ") +
    (r.note ? `  ${r.note}` : "")
  );
}

/** What the columns mean, for the tools' --help and npm start's preamble. */
export const COLUMN_HELP = `columns: mode (what sent or received; "(copied)" where the kernel copied every byte of a
zero-copy mode, as it always does on loopback) · size (bytes per send or datagram) · bytes (total
moved) · s (wall seconds) · MB/s (10^6 bytes/s) · ops/s (sends, datagrams or receive
completions per second) · CPU % (user+sys over wall time, 100 = one core) · user s / sys s (CPU
seconds) · zc % / copied % (share of the bytes the kernel sent in place / copied, as
IORING_SEND_ZC_REPORT_USAGE reports; "-" where nothing reports it) · errors (failed sends)`;
