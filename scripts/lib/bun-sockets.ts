// Bun's own sockets as the baseline row of `npm start`: Bun.connect sending to Bun.listen in
// another process, both with default options, the same payload and time as the io_uring rows.
// Run as a script it is the receiving side: it prints "listening PORT", counts what one
// connection sends, and prints {"bytes": N, "cpu_s": S} when the peer closes (S: the CPU seconds
// this process spent from the connection's open to its close).
import { fillPattern } from "./wire.ts";
import { startWindow, unreportedRow, type LabRow } from "./report.ts";

/** Send `size`-byte writes to host:port for `seconds`, then end the connection. Bytes counted are
 * those each write() accepted; a partial write's rest goes out first after the next drain. */
export async function bunSend(host: string, port: number, size: number, seconds: number): Promise<LabRow> {
  const payload = fillPattern(new Uint8Array(size));
  let bytes = 0,
    writes = 0,
    pending = 0;
  let done!: () => void;
  let failed!: (e: Error) => void;
  const closed = new Promise<void>((res, rej) => {
    done = res;
    failed = rej;
  });
  let stop = startWindow();
  let end = 0;
  const pump = (s: Bun.Socket<undefined>) => {
    while (performance.now() < end) {
      const n = s.write(pending ? payload.subarray(size - pending) : payload);
      if (n > 0) {
        bytes += n;
        pending = pending ? pending - n : size - n;
        if (pending === 0) writes++;
      }
      if (n <= 0 || pending > 0) return; // the socket's buffer is full: drain() calls again
    }
    s.end();
  };
  await Bun.connect({
    hostname: host,
    port,
    socket: {
      open(s) {
        stop = startWindow();
        end = performance.now() + seconds * 1000;
        pump(s);
      },
      drain: pump,
      data() {},
      close() {
        done();
      },
      error(_s, e) {
        failed(e);
      },
      connectError(_s, e) {
        failed(e);
      },
    },
  });
  await closed;
  return unreportedRow(
    { role: "send", proto: "tcp", family: host.includes(":") ? "ipv6" : "ipv4", mode: "bun", size },
    bytes,
    writes,
    stop(),
    "Bun.connect -> Bun.listen, default options (copies)",
  );
}

if (import.meta.main) {
  const host = process.argv[2] ?? "127.0.0.1";
  let bytes = 0;
  let cpu0 = process.cpuUsage();
  const server = Bun.listen({
    hostname: host,
    port: 0,
    socket: {
      open() {
        cpu0 = process.cpuUsage();
      },
      data(_s, d) {
        bytes += d.length;
      },
      close() {
        const cpu = process.cpuUsage(cpu0);
        console.log(JSON.stringify({ bytes, cpu_s: (cpu.user + cpu.system) / 1e6 }));
        server.stop(true);
      },
    },
  });
  console.log(`listening ${server.port}`);
}
