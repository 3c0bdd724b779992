// bun scripts/vm.ts — run bun test files inside a Debian kernel under QEMU (see --help).
import { dirname, join } from "node:path";
import { parseArgs, UsageError, USAGE, type VmOptions } from "./vm/options.ts";
import { runInVm } from "./vm/run.ts";
import { closingLine } from "./vm/summary.ts";
import { usageExit } from "./lib/cli.ts";

const projectDir = join(dirname(Bun.fileURLToPath(import.meta.url)), "..");

function parseOrExit(argv: string[]): VmOptions {
  try {
    const opts = parseArgs(argv, projectDir);
    if (opts) return opts;
    process.stdout.write(USAGE);
    process.exit(0);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    usageExit({ name: "vm", usage: USAGE }, err.message);
  }
}

const opts = parseOrExit(process.argv.slice(2));
const result = await runInVm(opts);
// A VM that could not be prepared, did not boot, timed out or lost bun without a failing test
// still failed: the closing line must say so, as the exit status does.
if (result.exitCode !== 0 && result.failed === 0) result.failed = 1;
process.stdout.write(closingLine(result) + "\n");
if (opts.json) {
  const { kernel, accel, passed, failed, skipped, exitCode, seconds } = result;
  process.stdout.write(JSON.stringify({ kernel, accel, passed, failed, skipped, exit_code: exitCode, seconds }) + "\n");
}
process.exit(result.exitCode);
