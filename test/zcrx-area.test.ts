// Tier 1/2: receive areas in each kind of memory are page aligned, zeroed, writable, and freed.
import { describe, expect, test } from "bun:test";
import { createArea } from "../src/zcrx/area.ts";
import { PAGE_SIZE } from "../src/ring/memory.ts";
import { UringError } from "../src/error.ts";
import { readFileSync } from "node:fs";
import { testIf } from "./helpers.ts";

function expectUringErrorMessage(fn: () => unknown, message: RegExp): void {
  let error: unknown = null;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(UringError);
  expect((error as Error).message).toMatch(message);
}

describe("createArea", () => {
  for (const memory of ["shared", "mmap", "thp"] as const) {
    test(`${memory}: page aligned, rounded to pages, zeroed and writable`, () => {
      const a = createArea(3 * PAGE_SIZE + 1, memory);
      try {
        expect(a.address % PAGE_SIZE).toBe(0);
        expect(a.byteLength).toBe(4 * PAGE_SIZE);
        expect(a.bytes.byteLength).toBe(4 * PAGE_SIZE);
        expect(a.bytes.every((b) => b === 0)).toBe(true);
        a.bytes[a.byteLength - 1] = 7;
        expect(a.bytes[a.byteLength - 1]).toBe(7);
        expect(a.sharedBuffer !== undefined).toBe(memory === "shared");
      } finally {
        a.free();
        a.free();
      }
    });
  }

  // Which of the two runs depends on the machine's free huge pages; the other skips and says why.
  const freeHuge = Number(/^HugePages_Free:\s+(\d+)/m.exec(readFileSync("/proc/meminfo", "utf8"))?.[1] ?? 0);
  testIf(
    freeHuge === 0 ? null : `${freeHuge} huge pages are free here, so the allocation does not fail`,
    "hugetlb without a free huge page: ENOMEM naming vm.nr_hugepages",
    () => {
      expectUringErrorMessage(() => createArea(PAGE_SIZE, "hugetlb"), /vm\.nr_hugepages=1/);
    },
  );

  testIf(
    freeHuge > 0 ? null : "no free 2 MiB huge page (set vm.nr_hugepages to 1 or more)",
    "hugetlb: a 2 MiB-rounded, 2 MiB-aligned area",
    () => {
      const a = createArea(PAGE_SIZE, "hugetlb");
      try {
        expect(a.byteLength).toBe(2 * 1024 * 1024);
        expect(a.address % (2 * 1024 * 1024)).toBe(0);
      } finally {
        a.free();
      }
    },
  );

  test("refuses sizes below a page and unknown memory kinds", () => {
    expect(() => createArea(100)).toThrow(/at least one page/);
    expect(() => createArea(PAGE_SIZE, "disk" as never)).toThrow(/memory must be/);
  });
});
