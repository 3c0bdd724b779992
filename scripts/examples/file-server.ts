// A file server that sends a file's contents with SEND_ZC from a registered buffer pool: each
// chunk is read with IORING_OP_READ_FIXED into a pool buffer and sent with SEND_ZC +
// IORING_RECVSEND_FIXED_BUF (ZcSender in "zc-fixed" mode); a buffer is read into again only after
// its send was released (the notification). Pages are pinned once, at registration, not per send.
// A client on the same ring receives the file and compares it byte for byte.
//   bun scripts/examples/file-server.ts [--file PATH] [--bytes 8388608] [--chunk 65536] [--buffers 8]
// Without --file a temporary file of --bytes is written first. Exits 1 on any mismatch.
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  openRing,
  FixedBufferPool,
  ZcSender,
  UringError,
  type AsyncRing,
  type TcpSocket,
  type ZcUsage,
} from "../../src/index.ts";
import { prepReadFixed } from "../../src/raw.ts";
import { ERRNO } from "../../src/abi/index.ts";
import { firstDifference, mismatch, parseArgs, pattern } from "./lib.ts";

const args = parseArgs(process.argv.slice(2), { file: "", bytes: 8 * 1024 * 1024, chunk: 64 * 1024, buffers: 8 });
let dir = "";
let path = args.file as string;
if (path === "") {
  dir = mkdtempSync(join(tmpdir(), "bun-uring-file-server-"));
  path = join(dir, "payload.bin");
  writeFileSync(path, pattern(args.bytes as number, 42));
}
const size = statSync(path).size;

interface ReadState {
  resolve: (n: number) => void;
  reject: (e: unknown) => void;
}
function onReadCqe(st: ReadState, res: number): void {
  if (res < 0) st.reject(new UringError("IORING_OP_READ_FIXED", -res));
  else st.resolve(res);
}

/** READ_FIXED of `len` bytes at `offset` of `fd` into pool buffer `index`. */
function readFixed(
  r: AsyncRing,
  pool: FixedBufferPool,
  fd: number,
  index: number,
  offset: number,
  len: number,
): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const ring = r.ring;
    const ud = ring.ops.add(onReadCqe, { resolve, reject });
    const slot = ring.getSqe();
    prepReadFixed(ring.sq, slot, fd, pool.address(index), len, offset, index);
    ring.setUserData(slot, ud);
    r.loop.kick();
  });
}

/** Send the whole file on `sock`: up to pool.count chunks in flight, each buffer reused after
 * its release. */
async function sendFile(r: AsyncRing, pool: FixedBufferPool, sock: TcpSocket, fd: number): Promise<ZcSender> {
  const zc = new ZcSender(r.ring, sock.fd, { mode: "zc-fixed", pool, capacity: pool.count, stream: true });
  let freed: (() => void) | null = null;
  let failure: unknown = null;
  zc.onSent = (_index: number, res: number) => {
    if (res < 0) failure ??= new UringError("IORING_OP_SEND_ZC", -res, "file chunk");
  };
  zc.onReleased = (index: number, _usage: ZcUsage) => {
    pool.free(index);
    freed?.();
  };
  let offset = 0;
  while (offset < size) {
    let index = pool.alloc();
    while (index < 0) {
      await new Promise<void>((resolve) => (freed = resolve));
      freed = null;
      index = pool.alloc();
    }
    const len = Math.min(pool.bufferSize, size - offset);
    const n = await readFixed(r, pool, fd, index, offset, len);
    if (n !== len)
      throw new UringError("IORING_OP_READ_FIXED", ERRNO.EIO!, `short read: ${n} of ${len} bytes at ${offset}`);
    zc.sendFixed(index, n, index);
    r.loop.kick();
    offset += n;
    if (failure) throw failure;
  }
  while (pool.available < pool.count) {
    await new Promise<void>((resolve) => (freed = resolve));
    freed = null;
  }
  if (failure) throw failure;
  return zc;
}

await using r = openRing();
const pool = FixedBufferPool.create(r.ring, { bufferSize: args.chunk as number, count: args.buffers as number });
const listener = r.listen({ host: "127.0.0.1", port: 0 });
const fd = openSync(path, "r");
try {
  const server = (async () => {
    const sock = await listener.accept();
    const zc = await sendFile(r, pool, sock, fd);
    await sock.close();
    return zc;
  })();
  const client = await r.connect({ host: "127.0.0.1", port: listener.port });
  const got = new Uint8Array(size);
  let n = 0;
  for await (const chunk of client.recv()) {
    if (n + chunk.length > size) mismatch(`received more than the file's ${size} bytes`);
    got.set(chunk, n);
    n += chunk.length;
  }
  const zc = await server;
  await client.close();
  await listener.close();
  const want = readFileSync(path);
  const at = firstDifference(got, want);
  if (n !== size || at >= 0) mismatch(`received ${n} of ${size} bytes, first difference at ${at}`);
  const s = zc.stats;
  console.log(
    `file-server: ${size} bytes sent with SEND_ZC from ${pool.count} registered ${pool.bufferSize}-byte buffers, received byte-exact; ` +
      `${s.fixedSends} fixed-buffer sends, notifications: ${s.zcNotifications} zero-copy, ${s.copiedNotifications} copied` +
      (s.copiedNotifications > 0 ? " (loopback: the kernel copies)" : ""),
  );
  if (r.inflight !== 0) mismatch(`${r.inflight} operations in flight after close`);
  pool.close();
} finally {
  closeSync(fd);
  if (dir) rmSync(dir, { recursive: true, force: true });
}
