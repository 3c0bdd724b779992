// `npm test`: typecheck and format check, then the whole bun test suite on this machine's kernel
// (tiers 1, 2 and, where a NIC is configured, 4). Tests that need what this machine lacks skip and
// say why. Ends with the closing line "N passed, N failed[, N skipped]"; the typecheck step (tsc
// and `prettier --check`, configured in .prettierrc.json and .prettierignore) counts as one test.
//
//   bun scripts/test.ts [bun test arguments...]
import { closingLine, countsFromBunTest, runEcho } from "./lib/summary.ts";
import { join } from "node:path";

const args = process.argv.slice(2);
if (args.includes("--help")) {
  console.log(
    "usage: bun scripts/test.ts [files or bun test flags]\n  runs tsc --noEmit and prettier --check (npm run format fixes what it reports), then bun test (all of test/ by default), then prints 'N passed, N failed'",
  );
  process.exit(0);
}

const root = join(import.meta.dir, "..") + "/";
const tsc = await runEcho([`${root}node_modules/.bin/tsc`, "--noEmit", "-p", root]);
console.log(tsc.code === 0 ? "typecheck: ok" : "typecheck: FAILED");
const fmt = await runEcho(
  [`${root}node_modules/.bin/prettier`, "--check", "--log-level", "warn", "."],
  {},
  { cwd: root },
);
console.log(fmt.code === 0 ? "format: ok" : "format: FAILED (npm run format rewrites the files it names)");
const checked = tsc.code === 0 && fmt.code === 0;

// With no files named, the project's own test/ runs whatever the current directory (named files
// stay relative to where the caller is).
const run = await runEcho([process.execPath, "test", ...args], { FORCE_COLOR: "0" }, args.length ? {} : { cwd: root });
const counts = countsFromBunTest(run.text);
counts.passed += checked ? 1 : 0;
counts.failed += checked ? 0 : 1;
if (run.code !== 0 && counts.failed === 0) counts.failed = 1; // the runner itself failed (crash, no tests)
console.log(closingLine(counts));
process.exit(counts.failed > 0 ? 1 : 0);
