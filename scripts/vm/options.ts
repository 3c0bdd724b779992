// Command-line options of scripts/vm.ts, and the usage text that describes them.
import { readdirSync } from "node:fs";
import { isAbsolute, join, relative, resolve } from "node:path";
import { parseArgs as nodeParseArgs } from "node:util";
import { UsageError, parseArgsMessage } from "../lib/cli.ts";

export type KernelArg = "newest" | "stable" | "oldstable" | "host";
export const KERNELS: KernelArg[] = ["newest", "stable", "oldstable", "host"];

/** Modules put in every guest and loaded at boot (when the kernel has them as modules). */
export const DEFAULT_MODULES = ["veth", "dummy"];

export interface VmOptions {
  kernel: KernelArg;
  timeoutSec: number;
  memMb: number;
  json: boolean;
  offline: boolean;
  /** Extra environment for the test run (--env K=V), on top of the host's BUN_URING_* variables. */
  env: Record<string, string>;
  modules: string[];
  /** Test files relative to the project directory. */
  files: string[];
  projectDir: string;
  cacheDir?: string;
}

export const USAGE = `usage: bun scripts/vm.ts [options] [--suite NAME | files...]

Boots a Debian kernel under QEMU with this machine's bun and liburing, runs bun test on the
given files inside, streams the output, and ends with "N passed, N failed[, N skipped]".

  --kernel K     newest (Debian unstable, default) | stable | oldstable | host
                 host: no VM, run the files with the host's bun on the host's kernel
  --timeout S    whole-run time bound in seconds (default 900); QEMU is killed on expiry
  --mem MB       guest memory (default 2048)
  --json         also print a final one-line JSON object:
                 {kernel, accel, passed, failed, skipped, exit_code, seconds}
  --env K=V      set K=V for the test run (repeatable); BUN_URING_* variables of this
                 process are passed through as well
  --module NAME  also put kernel module NAME (and its dependencies) in the guest and load it
                 at boot (repeatable; always included: ${DEFAULT_MODULES.join(", ")})
  --offline      do not contact the archive; use the kernel cached for that suite
  --suite NAME   all of test/NAME/*.test.ts; --suite vm is the default when no files are given
  files...       test files, relative to the project root or absolute inside it
  -h, --help     this text

Environment:
  BUN_URING_VM_CACHE   cache directory (default $XDG_CACHE_HOME/bun-uring/vm or ~/.cache/bun-uring/vm)
  BUN_URING_VM_MIRROR  archive URI to use instead of the one in this machine's apt sources
  BUN_URING_LIBURING   liburing.so.2 to copy into the guest (default: the host's)

Exit status: bun test's own inside the guest; 124 when the time bound expired; 125 when the
guest could not be prepared, did not boot, or stopped before bun test ended; 2 for a usage error.
`;

export { UsageError };

/** Parses argv (without the runtime and script) into options; --help is returned as null. Flags
 * go through node:util's parseArgs; a wrong one is a UsageError (scripts/lib/cli.ts). */
export function parseArgs(argv: string[], projectDir: string): VmOptions | null {
  let parsed;
  try {
    parsed = nodeParseArgs({
      args: argv,
      strict: true,
      allowPositionals: true,
      options: {
        help: { type: "boolean", short: "h" },
        kernel: { type: "string" },
        timeout: { type: "string" },
        mem: { type: "string" },
        json: { type: "boolean" },
        offline: { type: "boolean" },
        env: { type: "string", multiple: true },
        module: { type: "string", multiple: true },
        suite: { type: "string" },
      },
    });
  } catch (e) {
    if (String((e as { code?: unknown }).code).startsWith("ERR_PARSE_ARGS"))
      throw new UsageError(parseArgsMessage((e as Error).message));
    throw e;
  }
  const v = parsed.values;
  if (v.help) return null;
  const opts: VmOptions = {
    kernel: v.kernel === undefined ? "newest" : kernelArg(v.kernel),
    timeoutSec: v.timeout === undefined ? 900 : positiveNumber("--timeout", v.timeout),
    memMb: v.mem === undefined ? 2048 : positiveNumber("--mem", v.mem),
    json: v.json === true,
    offline: v.offline === true,
    env: Object.assign({}, ...(v.env ?? []).map(envPair)),
    modules: [...DEFAULT_MODULES, ...(v.module ?? [])],
    files: parsed.positionals.map((f) => projectRelative(projectDir, f)),
    projectDir,
  };
  if (v.suite !== undefined && opts.files.length) throw new UsageError("give either --suite or files, not both");
  if (!opts.files.length) opts.files = suiteFiles(projectDir, v.suite ?? "vm");
  return opts;
}

function kernelArg(v: string): KernelArg {
  if (!(KERNELS as string[]).includes(v)) throw new UsageError(`--kernel must be one of ${KERNELS.join(", ")}`);
  return v as KernelArg;
}

function positiveNumber(flag: string, v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${flag} needs a positive number, got ${v}`);
  return n;
}

/** K=V with K a shell variable name, since the guest's init exports it. */
function envPair(v: string): Record<string, string> {
  const eq = v.indexOf("=");
  const key = eq > 0 ? v.slice(0, eq) : "";
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) throw new UsageError(`--env needs KEY=VALUE, got ${v}`);
  return { [key]: v.slice(eq + 1) };
}

function projectRelative(projectDir: string, file: string): string {
  const abs = isAbsolute(file) ? file : resolve(process.cwd(), file);
  const rel = relative(projectDir, abs);
  if (rel.startsWith("..") || isAbsolute(rel)) throw new UsageError(`${file} is outside the project ${projectDir}`);
  return rel;
}

/** A suite is a directory of test/: `--suite vm` is test/vm/*.test.ts. */
export function suiteFiles(projectDir: string, suite: string): string[] {
  if (!/^[\w-]+$/.test(suite)) throw new UsageError(`bad suite name ${suite}`);
  const dir = join(projectDir, "test", suite);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    throw new UsageError(`no suite ${suite}: ${dir} does not exist`);
  }
  const files = names
    .filter((n) => n.endsWith(".test.ts"))
    .sort()
    .map((n) => join("test", suite, n));
  if (!files.length) throw new UsageError(`suite ${suite} has no *.test.ts files in ${dir}`);
  return files;
}
