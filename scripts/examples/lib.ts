// Small helpers the examples share: flag parsing (long and short names), a deterministic byte
// pattern to verify what arrived, and the exit on a mismatch.
import { basename } from "node:path";
import { parseCli, usageExit } from "../lib/cli.ts";

/** Flags as `--name value`, `--name=value`, `-x value` or a bare boolean `--name`, through the
 * tools' shared convention (scripts/lib/cli.ts): `--help` lists the flags with their defaults, a
 * wrong one is a one-line usage error (exit 2). `aliases` maps a one-letter short name to its long
 * one (`{ i: "ifname" }`). */
export function parseArgs(
  argv: readonly string[],
  defaults: Record<string, string | number | boolean>,
  aliases: Record<string, string> = {},
): Record<string, string | number | boolean> {
  const script = basename(process.argv[1] ?? "example.ts");
  const shortOf = Object.fromEntries(Object.entries(aliases).map(([short, long]) => [long, short]));
  const usage =
    `usage: bun scripts/examples/${script} [flags]\n\n` +
    Object.entries(defaults)
      .map(
        ([k, d]) =>
          `  ${shortOf[k] ? `-${shortOf[k]}, ` : ""}--${k}${typeof d === "boolean" ? "" : typeof d === "number" ? " N" : " S"}   (default ${JSON.stringify(d)})`,
      )
      .join("\n") +
    "\n  -h, --help   this text";
  const cli = { name: script.replace(/\.ts$/, ""), usage };
  const options = Object.fromEntries(
    Object.entries(defaults).map(([k, d]) => [
      k,
      {
        type: typeof d === "boolean" ? ("boolean" as const) : ("string" as const),
        ...(shortOf[k] ? { short: shortOf[k] } : {}),
      },
    ]),
  );
  const { values } = parseCli(cli, [...argv], options);
  const out: Record<string, string | number | boolean> = { ...defaults };
  for (const [k, v] of Object.entries(values as Record<string, string | boolean | undefined>)) {
    if (v === undefined || k === "help") continue;
    if (typeof defaults[k] === "number") {
      const n = Number(v);
      if (typeof v !== "string" || v.trim() === "" || !Number.isFinite(n))
        usageExit(cli, `--${k} must be a number, got ${v}`);
      out[k] = n;
    } else out[k] = v;
  }
  return out;
}

/** `n` bytes of a pattern that differs per `seed` (xorshift32), so misplaced bytes show. */
export function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

/** Index of the first differing byte, or -1 when equal. */
export function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

/** Print the reason and exit 1. */
export function mismatch(msg: string): never {
  console.error(`MISMATCH: ${msg}`);
  process.exit(1);
}
