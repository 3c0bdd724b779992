// A receiver in a child process that announces its port with a line ("listening 41234", or rx's
// "listening on ADDR port 41234") and then reports on its way out: tx's loopback receivers, Bun's
// baseline receiver, and the interoperability tests all start one the same way.

export interface ListeningChild {
  port: number;
  /** Resolves when the child exits, with its exit code and everything it wrote. */
  result: Promise<{ code: number; out: string; err: string }>;
  kill(): void;
}

/** Spawn `argv`, wait for the listening line on `portOn`, and keep reading both streams to the end. */
export async function spawnListening(
  argv: string[],
  o: { portOn?: "stdout" | "stderr"; cwd?: string } = {},
): Promise<ListeningChild> {
  const portOn = o.portOn ?? "stdout";
  const child = Bun.spawn(argv, { cwd: o.cwd, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const watched = portOn === "stdout" ? child.stdout : child.stderr;
  const reader = watched.getReader();
  const dec = new TextDecoder();
  let text = "";
  let port = NaN;
  for (;;) {
    const m = /listening (?:on \S+ port )?(\d+)/.exec(text);
    if (m) {
      port = Number(m[1]);
      break;
    }
    const { value, done } = await reader.read();
    if (done) {
      await child.exited;
      const other = await new Response(portOn === "stdout" ? child.stderr : child.stdout).text();
      throw new Error(
        `${argv.slice(0, 3).join(" ")} exited (${child.exitCode}) before listening: ${(text + other).trim()}`,
      );
    }
    text += dec.decode(value, { stream: true });
  }
  const rest = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return text;
      text += dec.decode(value, { stream: true });
    }
  })();
  const other = new Response(portOn === "stdout" ? child.stderr : child.stdout).text();
  const result = (async () => {
    const [watchedText, otherText, code] = await Promise.all([rest, other, child.exited]);
    return portOn === "stdout"
      ? { code, out: watchedText, err: otherText }
      : { code, out: otherText, err: watchedText };
  })();
  return { port, result, kill: () => child.kill() };
}

/** The last line of `text` that is a JSON object, parsed; null when there is none. */
export function lastJsonLine<T>(text: string): T | null {
  const line = text
    .trim()
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .pop();
  return line ? (JSON.parse(line) as T) : null;
}
