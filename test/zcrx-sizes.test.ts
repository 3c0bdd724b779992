// Tier 1: the refill ring size helper, table-driven, and its refusals.
import { describe, expect, test } from "bun:test";
import {
  refillRingBytes,
  refillRingBytesWithStats,
  refillStatsOffset,
  areaChunks,
  roundUpPowerOfTwo,
  DEFAULT_REFILL_HEADER,
} from "../src/zcrx/sizes.ts";
import { PAGE_SIZE } from "../src/ring/memory.ts";

describe("refillRingBytes", () => {
  const cases: Array<[string, number, { size: number; alignment: number } | undefined, number]> = [
    // liburing examples/zcrx.c: round_up(page + n * 16, page)
    ["1 entry, page header", 1, undefined, 2 * PAGE_SIZE],
    ["255 entries fill one page after the header", 255, undefined, 2 * PAGE_SIZE],
    ["256 entries (4096 bytes of RQEs)", 256, undefined, 2 * PAGE_SIZE],
    ["257 entries round up to 512", 257, undefined, 3 * PAGE_SIZE],
    ["4096 entries", 4096, undefined, PAGE_SIZE + 4096 * 16],
    ["32768 entries", 32768, undefined, PAGE_SIZE + 32768 * 16],
    // IO_URING_QUERY_ZCRX header: 8 bytes aligned to 64 (liburing test/zcrx.c get_rq_size)
    ["64-byte header, 128 entries", 128, { size: 8, alignment: 64 }, PAGE_SIZE],
    ["64-byte header, 252 entries -> 256", 252, { size: 8, alignment: 64 }, 2 * PAGE_SIZE],
    ["64-byte header, 255 entries", 255, { size: 64, alignment: 64 }, 2 * PAGE_SIZE],
    ["no header", 256, { size: 0, alignment: 1 }, PAGE_SIZE],
  ];
  for (const [name, entries, hdr, bytes] of cases) {
    test(name, () => {
      expect(refillRingBytes(entries, hdr)).toBe(bytes);
      expect(refillRingBytes(entries, hdr) % PAGE_SIZE).toBe(0);
    });
  }

  test("the region always holds header + rounded entries", () => {
    for (const n of [1, 3, 100, 1000, 5000, 32767]) {
      const hdr = { size: 40, alignment: 64 };
      expect(refillRingBytes(n, hdr)).toBeGreaterThanOrEqual(64 + roundUpPowerOfTwo(n) * 16);
    }
  });

  test("default header is one page", () => {
    expect(DEFAULT_REFILL_HEADER).toEqual({ size: PAGE_SIZE, alignment: PAGE_SIZE });
  });

  for (const bad of [0, -1, 1.5, 32769, Number.NaN]) {
    test(`refuses ${bad} entries before anything reaches the kernel`, () => {
      expect(() => refillRingBytes(bad)).toThrow(/entries must be 1\.\.32768/);
    });
  }

  test("refuses an alignment that is not a power of two", () => {
    expect(() => refillRingBytes(16, { size: 8, alignment: 48 })).toThrow(/alignment a power of two/);
  });
});

describe("areaChunks", () => {
  test("one chunk per page", () => {
    expect(areaChunks(1024 * 1024)).toBe((1024 * 1024) / PAGE_SIZE);
    expect(areaChunks(PAGE_SIZE + 1)).toBe(1);
    expect(areaChunks(64 * 1024, 16 * 1024)).toBe(4);
  });
});

describe("refill region with 7.2's copy counters", () => {
  test("struct zcrx_stats sits after the last entry on its own cache line, inside the region", () => {
    for (const [entries, hdr] of [
      [64, { size: 64, alignment: 64 }],
      [256, { size: 8, alignment: 8 }],
      [4096, DEFAULT_REFILL_HEADER],
    ] as const) {
      const at = refillStatsOffset(entries, hdr);
      const rqesEnd = Math.ceil(hdr.size / hdr.alignment) * hdr.alignment + entries * 16;
      expect(at).toBeGreaterThanOrEqual(rqesEnd);
      expect(at % 64).toBe(0);
      const bytes = refillRingBytesWithStats(entries, hdr);
      expect(bytes % PAGE_SIZE).toBe(0);
      expect(at + 16).toBeLessThanOrEqual(bytes);
      expect(bytes).toBeGreaterThanOrEqual(refillRingBytes(entries, hdr));
    }
    // A one-page header and 256 entries end exactly at a page boundary: the counters need one more.
    expect(refillRingBytes(256, DEFAULT_REFILL_HEADER)).toBe(2 * PAGE_SIZE);
    expect(refillRingBytesWithStats(256, DEFAULT_REFILL_HEADER)).toBe(3 * PAGE_SIZE);
  });
});
