// Small helpers the examples share: flag parsing (long and short names), a deterministic byte
// pattern to verify what arrived, and the exit on a mismatch.

/** Flags as `--name value`, `--name=value`, `-x value` or a bare boolean `--name`. `aliases` maps
 * a short name to its long one (`{ i: "ifname" }`). */
export function parseArgs(argv: readonly string[], defaults: Record<string, string | number | boolean>, aliases: Record<string, string> = {}): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const m = /^--?([^=]+)(?:=(.*))?$/.exec(a);
    if (!m) usageError(`unexpected argument ${a}`);
    const name = aliases[m[1]!] ?? m[1]!;
    if (!(name in defaults)) usageError(`unknown flag ${a}; known: ${Object.keys(defaults).map((k) => `--${k}`).join(" ")}`);
    const d = defaults[name];
    if (typeof d === "boolean") {
      out[name] = m[2] === undefined ? true : m[2] !== "false";
      continue;
    }
    const raw = m[2] ?? argv[++i];
    if (raw === undefined) usageError(`${a} needs a value`);
    if (typeof d === "number") {
      const n = Number(raw);
      if (!Number.isFinite(n)) usageError(`${a} must be a number, got ${raw}`);
      out[name] = n;
    } else out[name] = raw;
  }
  return out;
}

function usageError(msg: string): never {
  console.error(msg);
  process.exit(2);
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
