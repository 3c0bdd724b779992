// Reads the counts out of `bun test` output and prints the closing line CI recognises:
// "N passed, N failed" (", N skipped" when any were skipped).

export interface Counts {
  passed: number;
  failed: number;
  skipped: number;
}

/** Sum of bun test's summary lines (" 12 pass", " 0 fail", " 3 skip") in `text`. */
export function countsFromBunTest(text: string): Counts {
  const sum = (re: RegExp) => [...text.matchAll(re)].reduce((a, m) => a + Number(m[1]), 0);
  return {
    passed: sum(/^\s*(\d+) pass\s*$/gm),
    failed: sum(/^\s*(\d+) fail\s*$/gm),
    skipped: sum(/^\s*(\d+) (?:skip|todo)\s*$/gm),
  };
}

/** Counts from a closing line printed by another runner of ours ("3 passed, 0 failed, 1 skipped"). */
export function countsFromClosingLine(text: string): Counts | null {
  const m = [...text.matchAll(/^(?:\w+: )?(\d+) passed, (\d+) failed(?:, (\d+) skipped)?\s*$/gm)].pop();
  return m ? { passed: Number(m[1]), failed: Number(m[2]), skipped: Number(m[3] ?? 0) } : null;
}

export function closingLine(c: Counts): string {
  return `${c.passed} passed, ${c.failed} failed${c.skipped ? `, ${c.skipped} skipped` : ""}`;
}

/** Run a command, echoing its output as it comes (unless `quiet`), and return the exit code (null
 * when a signal ended it), the signal's name, and the full text. */
export async function runEcho(
  cmd: string[],
  env?: Record<string, string | undefined>,
  o: { quiet?: boolean; cwd?: string } = {},
): Promise<{ code: number | null; signal: string | null; text: string }> {
  const p = Bun.spawn(cmd, { cwd: o.cwd, stdout: "pipe", stderr: "pipe", env: { ...process.env, ...env } });
  let text = "";
  const pump = async (s: ReadableStream<Uint8Array>, out: NodeJS.WriteStream) => {
    const dec = new TextDecoder();
    for await (const chunk of s) {
      const t = dec.decode(chunk, { stream: true });
      text += t;
      if (!o.quiet) out.write(t);
    }
  };
  await Promise.all([pump(p.stdout, process.stdout), pump(p.stderr, process.stderr)]);
  const code = await p.exited;
  return { code: p.signalCode ? null : code, signal: p.signalCode ? String(p.signalCode) : null, text };
}
