// Bad input against zero-copy receive, on the simulated kernel side (src/testing) that drives the
// same ZcrxReceiver as a real ifq: every refusal is a UringError with the errno name, and the
// chunks stay accounted (the receiver's live count and the simulator's buffers in use return to
// zero once the good chunks are released; refused releases change neither).
import { describe, expect, test } from "bun:test";
import { SimulatedZcrx } from "../src/testing/index.ts";
import type { ZcrxReceiver } from "../src/zcrx/receiver.ts";
import { type BadInputRow, expectUringError } from "./fixtures/reliability-checks.ts";

const simRows: BadInputRow<null>[] = [
  { name: "areaBytes 0", code: "EINVAL", where: "SimulatedZcrx", call: () => new SimulatedZcrx({ areaBytes: 0 }) },
  {
    name: "areaBytes -4096",
    code: "EINVAL",
    where: "SimulatedZcrx",
    call: () => new SimulatedZcrx({ areaBytes: -4096 }),
  },
  {
    name: "areaBytes not whole pages",
    code: "EINVAL",
    where: "SimulatedZcrx",
    call: () => new SimulatedZcrx({ areaBytes: 4097 }),
  },
  { name: "areaBytes NaN", code: "EINVAL", where: "SimulatedZcrx", call: () => new SimulatedZcrx({ areaBytes: NaN }) },
  { name: "rqEntries 3", code: "EINVAL", where: "SimulatedZcrx", call: () => new SimulatedZcrx({ rqEntries: 3 }) },
  { name: "rqEntries 0", code: "EINVAL", where: "SimulatedZcrx", call: () => new SimulatedZcrx({ rqEntries: 0 }) },
  {
    name: "rqEntries 65536 (huge)",
    code: "EINVAL",
    where: "SimulatedZcrx",
    call: () => new SimulatedZcrx({ rqEntries: 65536 }),
  },
  {
    name: "bufferBytes 3000",
    code: "EINVAL",
    where: "SimulatedZcrx",
    call: () => new SimulatedZcrx({ bufferBytes: 3000 }),
  },
  {
    name: "chunkBytes past bufferBytes",
    code: "EINVAL",
    where: "SimulatedZcrx",
    call: () => new SimulatedZcrx({ chunkBytes: 8192 }),
  },
  { name: "chunkBytes 0", code: "EINVAL", where: "SimulatedZcrx", call: () => new SimulatedZcrx({ chunkBytes: 0 }) },
  { name: "cqEntries 100", code: "EINVAL", where: "SimulatedZcrx", call: () => new SimulatedZcrx({ cqEntries: 100 }) },
  { name: "areaId -1", code: "EINVAL", where: "SimulatedZcrx", call: () => new SimulatedZcrx({ areaId: -1 }) },
  { name: "areaId 65536", code: "EINVAL", where: "SimulatedZcrx", call: () => new SimulatedZcrx({ areaId: 65536 }) },
  {
    name: "chunkCapacity 0",
    code: "EINVAL",
    where: "ZcrxReceiver",
    call: () => new SimulatedZcrx().createReceiver({ chunkCapacity: 0 }),
  },
  {
    name: "two receivers on one simulator",
    code: "EINVAL",
    where: "SimulatedZcrx",
    call: () => {
      const s = new SimulatedZcrx();
      s.createReceiver();
      s.createReceiver();
    },
  },
  {
    name: "send on an fd that is not a simulated socket",
    code: "EINVAL",
    where: "SimulatedZcrx.send",
    call: () => new SimulatedZcrx().send(3, new Uint8Array(1)),
  },
  {
    name: "send after shutdown",
    code: "EINVAL",
    where: "SimulatedZcrx.send",
    call: () => {
      const s = new SimulatedZcrx();
      const fd = s.connect();
      s.shutdown(fd);
      s.send(fd, new Uint8Array(1));
    },
  },
];

describe("SimulatedZcrx refuses bad options", () => {
  for (const row of simRows)
    test(`${row.name} → ${row.code}`, () => void expectUringError(() => row.call(null), row.code, row.where));
});

interface Ctx {
  sim: SimulatedZcrx;
  rx: ZcrxReceiver;
  fd: number;
  /** Live chunks delivered so far (the handler collects them). */
  chunks: number[];
}

const noop = { onData: () => {} };

const rxRows: BadInputRow<Ctx>[] = [
  { name: "recv: fd -1", code: "EINVAL", where: "ZcrxReceiver.recv", call: (x) => x.rx.recv(-1, noop, null) },
  { name: "recv: fd 1.5", code: "EINVAL", where: "ZcrxReceiver.recv", call: (x) => x.rx.recv(1.5, noop, null) },
  {
    name: "recv: handler without onData",
    code: "EINVAL",
    where: "ZcrxReceiver.recv",
    call: (x) => x.rx.recv(x.fd, {} as never, null),
  },
  {
    name: "recv: handler null",
    code: "EINVAL",
    where: "ZcrxReceiver.recv",
    call: (x) => x.rx.recv(x.fd, null as never, null),
  },
  {
    name: "recv: maxBytes -1",
    code: "EINVAL",
    where: "ZcrxReceiver.recv",
    call: (x) => x.rx.recv(x.fd, noop, null, { maxBytes: -1 }),
  },
  {
    name: "recv: maxBytes 2^32 (huge)",
    code: "EINVAL",
    where: "ZcrxReceiver.recv",
    call: (x) => x.rx.recv(x.fd, noop, null, { maxBytes: 2 ** 32 }),
  },
  { name: "release: -1", code: "EINVAL", where: "ZcrxReceiver.release", call: (x) => x.rx.release(-1) },
  { name: "release: 1.5", code: "EINVAL", where: "ZcrxReceiver.release", call: (x) => x.rx.release(1.5) },
  { name: "release: 2^31 (huge)", code: "EINVAL", where: "ZcrxReceiver.release", call: (x) => x.rx.release(2 ** 31) },
  { name: "release: a string", code: "EINVAL", where: "ZcrxReceiver.release", call: (x) => x.rx.release("0" as never) },
  {
    name: "release: a handle never issued",
    code: "EINVAL",
    where: "ZcrxReceiver.release",
    call: (x) => x.rx.release(12345),
  },
  {
    name: "release twice",
    code: "EINVAL",
    where: "ZcrxReceiver.release",
    call: (x) => {
      const c = x.chunks.shift()!;
      x.rx.release(c);
      x.rx.release(c);
    },
  },
  {
    name: "view of a released chunk",
    code: "EINVAL",
    where: "ZcrxReceiver.view",
    call: (x) => {
      const c = x.chunks.shift()!;
      x.rx.release(c);
      x.rx.view(c);
    },
  },
  { name: "offsetOf(-5)", code: "EINVAL", where: "ZcrxReceiver.offsetOf", call: (x) => x.rx.offsetOf(-5) },
  {
    name: "lengthOf of a handle never issued",
    code: "EINVAL",
    where: "ZcrxReceiver.lengthOf",
    call: (x) => x.rx.lengthOf(999),
  },
  {
    name: "recv after close",
    code: "EBADF",
    where: "ZcrxReceiver.recv",
    call: (x) => {
      x.rx.close();
      x.rx.recv(x.fd, noop, null);
    },
  },
  {
    name: "run after close",
    code: "EBADF",
    where: "ZcrxReceiver.run",
    call: (x) => {
      x.rx.close();
      x.rx.run(0, 0);
    },
  },
  {
    name: "completions after close",
    code: "EBADF",
    where: "ZcrxReceiver.completions",
    call: (x) => {
      x.rx.close();
      x.rx.completions();
    },
  },
];

describe("ZcrxReceiver refuses bad input and keeps every chunk accounted", () => {
  for (const row of rxRows) {
    test(`${row.name} → ${row.code}`, () => {
      const sim = new SimulatedZcrx({ areaBytes: 64 * 4096, rqEntries: 16 });
      const rx = sim.createReceiver();
      const chunks: number[] = [];
      // One live connection with four delivered chunks the bad calls can aim at.
      const fd = sim.connect();
      rx.recv(fd, { onData: (_c: null, chunk: number) => void chunks.push(chunk) }, null);
      sim.send(fd, new Uint8Array(4 * 4096).fill(7));
      rx.runUntil(() => chunks.length === 4, 5000);
      const fd2 = sim.connect();
      const released = rx.stats.released;
      expectUringError(() => row.call({ sim, rx, fd: fd2, chunks }), row.code, row.where);
      if (rx.isClosed) return;
      // Only a release the row made itself (the first of "release twice") may have counted.
      expect(rx.stats.released - released).toBeLessThanOrEqual(1);
      for (const c of chunks) rx.release(c);
      rx.runUntil(() => rx.unpublished === 0 && rx.pending === 0, 5000);
      expect(rx.live).toBe(0);
      sim.reclaim();
      expect(sim.buffersInUse).toBe(0);
      expect(sim.violations).toEqual([]);
    });
  }
});
