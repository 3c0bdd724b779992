// Running host commands with a deadline, so a stuck apt or qemu never outlives --timeout.

export interface ProcResult {
  code: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export interface ProcOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  /** Absolute time (ms since epoch) after which the process is killed. */
  deadline?: number;
  /** Let the child write straight to our stderr (apt's progress), instead of capturing it. */
  inheritStderr?: boolean;
}

export class DeadlineError extends Error {
  constructor(what: string) {
    super(`timed out while running: ${what}`);
    this.name = "DeadlineError";
  }
}

export function msLeft(deadline: number | undefined): number {
  return deadline === undefined ? Number.POSITIVE_INFINITY : deadline - Date.now();
}

/** Runs argv to completion and captures its output; kills it at the deadline. */
export async function run(argv: string[], opts: ProcOptions = {}): Promise<ProcResult> {
  if (msLeft(opts.deadline) <= 0) throw new DeadlineError(argv.join(" "));
  const child = Bun.spawn(argv, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdin: "ignore",
    stdout: "pipe",
    stderr: opts.inheritStderr ? "inherit" : "pipe",
  });
  let timedOut = false;
  const left = msLeft(opts.deadline);
  const timer = Number.isFinite(left)
    ? setTimeout(() => {
        timedOut = true;
        child.kill("SIGKILL");
      }, left)
    : undefined;
  const stdoutText = new Response(child.stdout).text();
  const stderrText = opts.inheritStderr ? Promise.resolve("") : new Response(child.stderr as ReadableStream).text();
  const [stdout, stderr, code] = await Promise.all([stdoutText, stderrText, child.exited]);
  if (timer) clearTimeout(timer);
  return { code, stdout, stderr, timedOut };
}

/** Like run(), but a non-zero exit becomes an error carrying the command's stderr. */
export async function runChecked(argv: string[], opts: ProcOptions = {}): Promise<string> {
  const result = await run(argv, opts);
  if (result.timedOut) throw new DeadlineError(argv.join(" "));
  if (result.code !== 0) {
    const detail = (result.stderr || result.stdout).trim().split("\n").slice(-8).join("\n");
    throw new Error(`${argv.join(" ")} exited with ${result.code}\n${detail}`);
  }
  return result.stdout;
}

/** Finds an executable on PATH (Bun.which), or undefined. */
export function which(name: string): string | undefined {
  return Bun.which(name) ?? undefined;
}

/** Calls onLine for each line of a byte stream as it arrives (the last one even without \n). */
export async function forEachLine(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void): Promise<void> {
  const decoder = new TextDecoder();
  let pending = "";
  for await (const chunk of stream) {
    pending += decoder.decode(chunk, { stream: true });
    const lines = pending.split("\n");
    pending = lines.pop()!;
    lines.forEach(onLine);
  }
  if (pending) onLine(pending);
}
