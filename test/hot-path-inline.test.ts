// The raw layer's per-SQE calls must stay small enough for JSC's top tier (FTL) to inline them
// into the caller's loop: a call to Ring.track instead of its inlined body made the JavaScript part
// of a NOP about half again as slow (bench/results/nop-ab-2026-12-05.md). JSC inlines a callee whose
// bytecode cost is at most maximumFunctionForCallInlineCandidateBytecodeCostForFTL (170), so one
// more check in Ring.track's fast body can silently undo it. The same goes for getSqe's reload of
// the SQ head (reloadSqHead), which such a loop runs once per lap of the SQ: left as a call, it
// kept the JIT from hoisting the loop's loads; and for Ring.begin, the submission idiom of the
// library's own layers. This runs NOP loops in a child
// process with JSC's inlining log (printEachDFGFTLInlineCall) and the concurrent JIT off, so that
// what the FTL compiles is decided the same way on every run, and reads what went into the loop.
import { expect } from "bun:test";
import { resolve } from "node:path";
import { testIf } from "./helpers.ts";

const BUN = process.execPath;
const FIXTURE = resolve(import.meta.dir, "fixtures/hot-loop.ts");
const LOG_ENV = { BUN_JSC_printEachDFGFTLInlineCall: "1", BUN_JSC_useConcurrentJIT: "0" };
/** Rounds of 64 NOPs per loop: with the concurrent JIT off the FTL compiles each loop (OSR entry)
 * within 3000 rounds on Bun 1.4.5; this leaves a margin and stays short under emulation. */
const ROUNDS = 10_000;

/** Why the inlining log cannot be read here, or null. */
function noInliningLog(): string | null {
  for (const name of ["BUN_JSC_useJIT", "BUN_JSC_useDFGJIT", "BUN_JSC_useFTLJIT"]) {
    if (process.env[name] === "0" || process.env[name] === "false") return `${name} is off in this environment`;
  }
  const p = Bun.spawnSync([BUN, "-e", "0"], { env: { ...process.env, ...LOG_ENV }, stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0)
    return `this Bun's JavaScriptCore does not take BUN_JSC_printEachDFGFTLInlineCall (${p.stderr.toString().trim().split("\n")[0]})`;
  return null;
}

testIf(
  noInliningLog(),
  "getSqe (with reloadSqHead), prepNop, track (with attach) and begin (with bind) are inlined into hot NOP loops by the top tier",
  () => {
    const p = Bun.spawnSync([BUN, FIXTURE, String(ROUNDS)], {
      env: { ...process.env, ...LOG_ENV },
      stdout: "pipe",
      stderr: "pipe",
    });
    const log = p.stderr.toString();
    expect(p.exitCode, log.slice(-2000)).toBe(0);
    expect(JSON.parse(p.stdout.toString().trim())).toEqual({ nops: 2 * ROUNDS * 64 });
    // "[InlineCall][FTL] Callee: track#AbCdEf -> Caller: nopLoop#GhIjKl", once per FTL compile of
    // a loop (OSR entry and the function itself).
    const inlinedInto = (loop: string): string[] => {
      const names = new Set<string>();
      for (const m of log.matchAll(/\[InlineCall\]\[FTL\] Callee: (\w+)#\w+ -> Caller: (\w+)#/g))
        if (m[2] === loop) names.add(m[1]!);
      expect(names.size, `${loop} was never compiled by the FTL`).toBeGreaterThan(0);
      return [...names].sort();
    };
    const track = inlinedInto("nopLoop");
    for (const fn of ["getSqe", "reloadSqHead", "prepNop", "track", "attach"]) expect(track).toContain(fn);
    const begin = inlinedInto("beginLoop");
    for (const fn of ["begin", "bind", "getSqe", "reloadSqHead", "prepNop"]) expect(begin).toContain(fn);
  },
  120_000,
);
