// A TCP echo server and a client that checks every byte comes back, through the async API
// (openRing, listen/accept, recv as an async iterable, send with its sent/released moments).
//   bun scripts/examples/echo.ts [--conns 4] [--bytes 262144] [--port 0] [--host 127.0.0.1]
// Prints one summary line and exits 0 when every echo matched, 1 otherwise.
import { openRing, type TcpSocket } from "../../src/index.ts";
import { firstDifference, mismatch, parseArgs, pattern } from "./lib.ts";

const args = parseArgs(process.argv.slice(2), { conns: 4, bytes: 256 * 1024, port: 0, host: "127.0.0.1" });
const conns = args.conns as number;
const bytes = args.bytes as number;

await using ring = openRing();
const listener = ring.listen({ host: args.host as string, port: args.port as number });

// The server: one task per connection, echoing each chunk. A chunk is the receive pool's buffer,
// so the loop waits for the send to release it before stepping on (which hands it back).
async function serve(sock: TcpSocket): Promise<void> {
  for await (const chunk of sock.recv()) await sock.send(chunk).released;
  await sock.close();
}
const served: Promise<void>[] = [];
const accepting = (async () => {
  for await (const sock of listener) served.push(serve(sock));
})();

// The clients: send a pattern, read until it all came back, compare.
async function client(i: number): Promise<number> {
  const sock = await ring.connect({ host: args.host as string, port: listener.port });
  const data = pattern(bytes, i + 1);
  const back = new Uint8Array(bytes);
  let got = 0;
  const reading = (async () => {
    if (bytes === 0) return;
    for await (const chunk of sock.recv()) {
      back.set(chunk.subarray(0, Math.min(chunk.length, bytes - got)), got);
      got += chunk.length;
      if (got >= bytes) break;
    }
  })();
  const sent = sock.send(data);
  await sent;
  await reading;
  await sent.released;
  await sock.close();
  const at = firstDifference(back, data);
  if (got !== bytes || at >= 0) mismatch(`connection ${i}: got ${got} of ${bytes} bytes, first difference at ${at}`);
  return got;
}

const t0 = performance.now();
const totals = await Promise.all(Array.from({ length: conns }, (_, i) => client(i)));
const ms = performance.now() - t0;
await listener.close();
await accepting;
await Promise.all(served);
const inflight = ring.inflight;
if (inflight !== 0) mismatch(`${inflight} operations still in flight after every socket closed`);
const total = totals.reduce((a, b) => a + b, 0);
console.log(
  `echo: ${conns} connections x ${bytes} bytes echoed byte-exact (${total} bytes, ${ms.toFixed(1)} ms), 0 operations in flight`,
);
