// Tier 3: one zcrx ifq shared by two rings (ZCRX_CTRL_EXPORT and ZCRX_REG_IMPORT, Linux 6.19+),
// device-less, in the VM: the exporter's ring registers it, the importing ring receives a TCP
// stream through it into the exporter's area and gives buffers back through its refill ring.
// Prints one `zcrx-vm-share:` JSON line.
import { describe, expect } from "bun:test";
import { c } from "../../ffi/index.ts";
import { MSG_DONTWAIT, SHUT_WR } from "../../src/abi/net.ts";
import { Ring } from "../../src/ring/ring.ts";
import { registerZcrxIfq, importZcrx } from "../../src/zcrx/ifq.ts";
import { queryZcrx } from "../../src/zcrx/query.ts";
import { kernelAtLeast, kernelRelease } from "../../src/ring/kernel.ts";
import { tcpAccept, tcpConnect, tcpListen, closeQuietly } from "../../src/net/socket.ts";
import { testIf } from "../helpers.ts";
import { patternAt, patternMatches } from "./fixtures/zcrx-pattern.ts";

const inVm = process.env.BUN_URING_IN_VM === "1";
const q = queryZcrx();
const gate = (q !== null && q.nodev && q.import) || (inVm && kernelAtLeast("7.1"))
  ? null
  : `sharing a device-less ifq needs ZCRX_REG_IMPORT (6.19) and ZCRX_REG_NODEV (7.1); this kernel is ${kernelRelease()}; run it with \`bun scripts/vm.ts --kernel newest test/vm/zcrx-share.test.ts\``;

describe("one device-less ifq, two rings", () => {
  testIf(gate, "exported by one ring, imported by another, which receives byte-exact through it", () => {
    const ringOpts = { entries: 64, cqEntries: 1024, deferTaskrun: true, cqe32: true } as const;
    const exporter = Ring.create(ringOpts);
    const importer = Ring.create(ringOpts);
    const ifq = registerZcrxIfq(exporter, { nodev: true, areaBytes: 1 << 20, refillMemory: "user" });
    try {
      const fd = ifq.export();
      const imported = importZcrx(importer, fd, ifq.shared);
      c.close(fd);
      const rx = imported.receiver();
      const l = tcpListen(importer, { host: "127.0.0.1", port: 0, via: "libc" });
      const client = tcpConnect(importer, { host: "127.0.0.1", port: l.address.port, via: "libc" });
      const server = tcpAccept(importer, l.fd, { via: "libc" });
      const total = 4 << 20;
      let sent = 0, got = 0, bad = -1;
      let end = null as number | null;
      rx.recv(server, {
        onData(_: null, chunk, _offset, length) {
          if (bad < 0 && !patternMatches(rx.view(chunk), got)) bad = got;
          got += length;
          rx.release(chunk);
        },
        onEnd(_: null, res) {
          end = res;
        },
      }, null);
      const deadline = performance.now() + 60_000;
      while (end === null && performance.now() < deadline) {
        if (sent < total) {
          const piece = patternAt(sent, Math.min(65536, total - sent));
          const n = c.send(client, piece, piece.length, MSG_DONTWAIT);
          if (n > 0) sent += n;
          if (sent === total) c.shutdown(client, SHUT_WR);
        }
        rx.run(1, 50);
      }
      console.log(`zcrx-vm-share: ${JSON.stringify({ kernel: kernelRelease(), exporter_id: ifq.id, importer_id: imported.id, bytes: got, end, stats: rx.stats.snapshot() })}`);
      expect(end).toBe(0);
      expect(got).toBe(total);
      expect(bad).toBe(-1);
      expect(rx.live).toBe(0);
      rx.close();
      for (const f of [server, client, l.fd]) closeQuietly(f);
    } finally {
      importer.close();
      exporter.close();
      ifq.close();
    }
  }, 120_000);
});
