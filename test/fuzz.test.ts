// A short fuzz run with a fixed seed (scripts/fuzz.ts runs 100 000 sequences): random valid and
// invalid operations against live rings must keep every invariant — nothing left in flight, each
// operation's last CQE seen exactly once, every SEND_ZC buffer released exactly once, no CQE lost
// or unexplained, no exception other than the library's UringError.
import { expect, test } from "bun:test";
import { runFuzz } from "../scripts/fuzz.ts";

test("300 fuzz sequences (seed 20261122) keep every invariant", () => {
  const r = runFuzz({ sequences: 300, seed: 20261122, ringEvery: 75 });
  if (r.violations.length) console.log(r.violations.join("\n"));
  expect(r.violations).toEqual([]);
  expect(r.leaks).toBe(0);
  expect(r.foreign_errors).toBe(0);
  expect(r.sequences).toBe(300);
  // The run must have exercised what it claims: operations, SEND_ZC with notifications, refused
  // library calls, kernel errors, rings closed with operations in flight.
  expect(r.operations).toBeGreaterThan(800);
  expect(r.send_zc_notifs).toBeGreaterThan(0);
  expect(r.refused_calls).toBeGreaterThan(0);
  expect(r.errors_seen.EBADF ?? 0).toBeGreaterThan(0);
  expect(r.errors_seen.ECANCELED ?? 0).toBeGreaterThan(0);
  expect(r.rings).toBeGreaterThanOrEqual(4);
}, 120_000);

test("a second seed, small rings replaced often", () => {
  const r = runFuzz({ sequences: 150, seed: 7, ringEvery: 20 });
  if (r.violations.length) console.log(r.violations.join("\n"));
  expect(r.violations).toEqual([]);
  expect(r.leaks).toBe(0);
  expect(r.foreign_errors).toBe(0);
  expect(r.rings).toBeGreaterThanOrEqual(8);
}, 120_000);
