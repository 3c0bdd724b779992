// Counting results from bun test's closing summary (" 12 pass", " 0 fail", " 3 skip", " 1 error").

export interface Counts {
  passed: number;
  failed: number;
  skipped: number;
}

const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;

export function stripAnsi(text: string): string {
  return text.replace(ANSI, "");
}

/** Accumulates counts line by line; each summary line adds, so several bun test runs sum up. */
export class SummaryParser {
  readonly counts: Counts = { passed: 0, failed: 0, skipped: 0 };

  line(raw: string): void {
    const match = /^\s*(\d+) (pass|fail|skip|todo|error|errors)\s*$/.exec(stripAnsi(raw));
    if (!match) return;
    const n = Number(match[1]);
    if (match[2] === "pass") this.counts.passed += n;
    // A todo test did not run, as a skipped one did not (scripts/lib/summary.ts counts it so too).
    else if (match[2] === "skip" || match[2] === "todo") this.counts.skipped += n;
    // Errors between tests fail the run just as a failed test does, so they count as failures.
    else this.counts.failed += n;
  }
}

/** The closing line: "N passed, N failed", with ", N skipped" when there were skips. */
export function closingLine(counts: Counts): string {
  const skipped = counts.skipped ? `, ${counts.skipped} skipped` : "";
  return `${counts.passed} passed, ${counts.failed} failed${skipped}`;
}
