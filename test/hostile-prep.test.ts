// Hostile use of the prep functions and the SQ slot protocol, each scenario in its own process
// (test/fixtures/hostile/prep.ts), since before the checks some of them crashed Bun (SIGSEGV) or
// made the kernel replay old work.
import { describe, expect, test, setDefaultTimeout } from "bun:test";
import { expectClean, runScenario } from "./fixtures/hostile/spawn.ts";

// Each scenario is a process of its own; under the VM tier's emulation (TCG) one can take far
// longer than bun test's 5 s default, which would kill it half way.
setDefaultTimeout(120_000);

describe("prep functions under hostile input (each in its own process)", () => {
  test("a length of -1 on a 64-byte buffer is refused (it was a 64 KiB read into 64 bytes: SIGSEGV)", () => {
    const r = expectClean(runScenario("prep.ts", "read-len-minus-one"));
    expect(r.refused[0]).toContain("IORING_OP_READ: EINVAL (len must be an integer 0..4294967295 (u32), got -1)");
    expect(r.refused[1]).toContain("len 65536 exceeds the buffer's 64 bytes");
    expect(r.read).toBe(64);
  });

  test("wrong types and ranges for every SQE field are refused, naming the opcode and the field", () => {
    const r = expectClean(runScenario("prep.ts", "wrong-types"));
    expect(r.refused).toBe(75);
  });

  test('slots: NaN, undefined, "1", 1.5, 2^32, a slot not handed out or already prepared, track twice', () => {
    const r = expectClean(runScenario("prep.ts", "slot-misuse"));
    expect(r.refused).toBe(13);
  });

  test("a slot taken and never prepared goes out as a NOP, not as its previous lap's READ", () => {
    const r = expectClean(runScenario("prep.ts", "replay-old-lap"));
    expect(r.left).toBe("SECOND");
    expect(r.unpreparedSqes).toBe(1);
  });

  test("a full SQ submits only the prepared slots before the first unprepared one", () => {
    const r = expectClean(runScenario("prep.ts", "full-sq-unprepared"));
    expect(r.done).toEqual([1, 2, 3, 4, 5]);
    expect(r.busy).toContain("Ring.getSqe: EBUSY");
  });

  test("buffers: detached, shrunk, empty and bare ArrayBuffers refused; SharedArrayBuffer, odd offsets accepted", () => {
    const r = expectClean(runScenario("prep.ts", "buffers"));
    expect(r.refused.length).toBe(4);
    expect(r.written).toEqual([8, 4, 16]);
  });
});
