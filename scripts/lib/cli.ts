// The command-line convention every tool in scripts/ (and bench/, examples/) shares:
// node:util's parseArgs (strict), `-h, --help` prints the usage text on stdout and exits 0,
// a usage error is one line on stderr, "<tool>: <what is wrong> (--help for usage)", exit 2,
// and an expected failure at run time (a refused connection, an errno from the kernel) is one
// line "<tool>: <message>", exit 1. Neither prints a stack trace; an unexpected exception does,
// since that is a bug to report.
import { parseArgs } from "node:util";
import { UringError } from "../../src/error.ts";

/** The port every lab tool (tx, rx, the examples) uses by default: liburing's send-zerocopy's. */
export const DEFAULT_PORT = 8000;

/** Exit statuses of the convention. */
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** A wrong argument: reported as a usage error (exit 2). */
export class UsageError extends Error {
  override name = "UsageError";
}

/** An expected failure at run time, worded for the user: one line, exit 1. */
export class ToolError extends Error {
  override name = "ToolError";
}

type OptionSpec = {
  type: "string" | "boolean";
  short?: string;
  multiple?: boolean;
  default?: string | boolean | string[] | boolean[];
};

export interface Cli {
  /** Tool name, the prefix of every message ("tx", "rx", "vm"). */
  name: string;
  usage: string;
}

/** parseArgs with the shared convention: --help handled, its errors become one-line usage errors. */
export function parseCli<O extends Record<string, OptionSpec>>(
  cli: Cli,
  argv: string[],
  options: O,
  o: { positionals?: boolean } = {},
) {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: { ...options, help: { type: "boolean", short: "h" } },
      strict: true,
      allowPositionals: o.positionals ?? false,
    });
  } catch (e) {
    if (typeof (e as { code?: unknown }).code === "string" && (e as { code: string }).code.startsWith("ERR_PARSE_ARGS"))
      usageExit(cli, parseArgsMessage((e as Error).message));
    throw e;
  }
  if ((parsed.values as Record<string, unknown>).help) {
    process.stdout.write(cli.usage.endsWith("\n") ? cli.usage : cli.usage + "\n");
    process.exit(0);
  }
  return parsed;
}

/** parseArgs's first line, in the tools' voice: "Unknown option '--x'" -> "unknown option --x". */
export function parseArgsMessage(message: string): string {
  const first = message.split("\n")[0]!.replace(/\.$/, "");
  const m = /^Unknown option '([^']*)'/.exec(first);
  if (m) return `unknown option ${m[1]!.startsWith("-") ? m[1] : `-${m[1]}`}`;
  const p = /^Unexpected argument '([^']*)'/.exec(first);
  if (p) return `unexpected argument ${p[1]}`;
  return first.charAt(0).toLowerCase() + first.slice(1);
}

/** Print a usage error the shared way and exit 2. */
export function usageExit(cli: Cli, message: string): never {
  process.stderr.write(`${cli.name}: ${message} (--help for usage)\n`);
  process.exit(EXIT_USAGE);
}

/** Print an expected run-time failure the shared way and exit 1. */
export function failExit(cli: Cli, message: string): never {
  process.stderr.write(`${cli.name}: ${message}\n`);
  process.exit(EXIT_FAILURE);
}

/** Run a tool's main: UsageError exits 2, ToolError and UringError (an errno with its syscall and
 * cause) exit 1 with their one-line message; anything else propagates with its stack. */
export async function runTool(cli: Cli, main: () => unknown): Promise<void> {
  try {
    await main();
  } catch (e) {
    if (e instanceof UsageError) usageExit(cli, e.message);
    if (e instanceof ToolError || e instanceof UringError) failExit(cli, e.message);
    throw e;
  }
}

/** A number within [min, max] (integer unless `fraction`), or a UsageError naming the flag. */
export function numberArg(
  flag: string,
  value: string,
  o: { min?: number; max?: number; fraction?: boolean } = {},
): number {
  const pattern = o.fraction ? /^-?\d+(\.\d+)?$/ : /^-?\d+$/;
  const n = pattern.test(value.trim()) ? Number(value) : NaN;
  const min = o.min ?? 0,
    max = o.max ?? Number.MAX_SAFE_INTEGER;
  if (!Number.isFinite(n) || n < min || n > max) {
    const kind = o.fraction ? "a number" : "an integer";
    throw new UsageError(`${flag} must be ${kind} ${min}..${max}, got ${value}`);
  }
  return n;
}

const SIZE_UNITS: Record<string, number> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** Bytes with an optional K, M or G suffix (powers of 1024), within [min, max]. */
export function sizeArg(flag: string, value: string, o: { min?: number; max?: number } = {}): number {
  const m = /^(\d+)([kKmMgG]?)$/.exec(value.trim());
  if (!m) throw new UsageError(`${flag}: not a size: ${value} (bytes, or a number with K, M or G)`);
  const n = Number(m[1]) * SIZE_UNITS[m[2]!.toLowerCase()]!;
  const min = o.min ?? 1,
    max = o.max ?? Number.MAX_SAFE_INTEGER;
  if (n < min) throw new UsageError(`${flag} must be at least ${min} bytes, got ${value}`);
  if (n > max) throw new UsageError(`${flag} must be at most ${max} bytes, got ${value}`);
  return n;
}

/** A TCP/UDP port, 0..65535 (0: the kernel picks one when listening). */
export function portArg(flag: string, value: string): number {
  return numberArg(flag, value, { min: 0, max: 65535 });
}

/** One of `choices`, or a UsageError listing them. */
export function choiceArg<T extends string>(flag: string, value: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(value))
    throw new UsageError(`${flag} must be one of ${choices.join(", ")}, got ${value}`);
  return value as T;
}
