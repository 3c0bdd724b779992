// A copying receiver that keeps one IORING_OP_RECV armed on a socket: each completion hands the
// bytes to a callback and re-arms, until the peer closes (res 0) or an error. Used by the tests,
// the tx experiment's receiver role and the throughput benchmark, where every sender is measured
// against the same plain receiver.
import { prepRecv } from "../ops/prep.ts";
import type { Ring } from "../ring/ring.ts";
import { invalidArgument, shown } from "../error.ts";
import { socketError } from "./submit.ts";
import { addressOf } from "../../ffi/index.ts";
import { IORING_OP_RECV } from "../abi/sqe.ts";
import { MSG_TRUNC } from "../abi/net.ts";
import type { Region } from "../ring/memory.ts";
import { allocKernelMemory, freeKernelMemory, heapFreeMemory } from "../ring/worker-memory.ts";

export interface RecvLoopOptions {
  /** Receive buffer bytes. Default 262144. */
  bufferSize?: number;
  /** Called with a view of the bytes just received (valid until the callback returns; in a
   * Worker the buffer is an anonymous mapping, emptied when the loop ends). */
  onData?: (bytes: Uint8Array) => void;
  /** Count bytes without copying them out of the kernel (MSG_TRUNC on TCP: the data is
   * discarded; liburing's send-zerocopy receiver does this). Default false. */
  discard?: boolean;
}

export class RecvLoop {
  readonly ring: Ring;
  readonly fd: number;
  /** Bytes received so far. */
  bytes = 0;
  /** Completions with data. */
  recvs = 0;
  /** True once the peer closed or an error ended the loop. */
  done = false;
  /** The error that ended the loop (a UringError naming IORING_OP_RECV), or null. */
  error: Error | null = null;
  private readonly buf: Uint8Array;
  private readonly address: number;
  /** The buffer's memory in a Worker (src/ring/worker-memory.ts), given back when the loop ends. */
  private readonly region: Region | null;
  private readonly onData: ((bytes: Uint8Array) => void) | undefined;
  private readonly flags: number;
  private readonly handler: (self: RecvLoop, res: number) => void;
  private stopped = false;

  constructor(ring: Ring, fd: number, o: RecvLoopOptions = {}) {
    if (!Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff)
      throw invalidArgument("RecvLoop", `fd must be a non-negative integer, got ${shown(fd)}`);
    const size = o.bufferSize ?? 262144;
    // One RECV's length is a u32, and a larger buffer than the kernel's MAX_RW_COUNT is never filled.
    if (!Number.isInteger(size) || size < 1 || size > 0x7ffff000)
      throw invalidArgument("RecvLoop", `bufferSize must be an integer 1..2147479552, got ${shown(size)}`);
    if (o.onData !== undefined && typeof o.onData !== "function")
      throw invalidArgument("RecvLoop", `onData must be a function, got ${typeof o.onData}`);
    this.ring = ring;
    this.fd = fd;
    this.region = heapFreeMemory ? allocKernelMemory(size, "RecvLoop") : null;
    this.buf = this.region === null ? new Uint8Array(size) : new Uint8Array(this.region.buffer, 0, size);
    this.address = addressOf(this.buf);
    this.onData = o.onData;
    this.flags = o.discard ? MSG_TRUNC : 0;
    this.handler = (self, res) => self.complete(res);
    try {
      this.arm();
    } catch (e) {
      this.end();
      throw e;
    }
  }

  /** No receive is armed any more. */
  private end(): void {
    this.done = true;
    if (this.region !== null) freeKernelMemory(this.region);
  }

  /** Stop re-arming after the next completion. */
  stop(): void {
    this.stopped = true;
  }

  private arm(): void {
    const ring = this.ring;
    const slot = ring.begin(this.handler, this as RecvLoop, this.buf);
    prepRecv(ring.sq, slot, this.fd, this.address, this.buf.length, this.flags);
  }

  private complete(res: number): void {
    if (res > 0) {
      this.bytes += res;
      this.recvs++;
      // The receive is re-armed even when onData throws (the error still reaches the caller of
      // ring.completions() / run(), after the rest of the batch): one bad callback must not stop
      // the loop. Re-arming waits for onData, which reads the bytes the next RECV overwrites.
      try {
        if (this.onData) this.onData(this.buf.subarray(0, res));
      } finally {
        if (!this.stopped && !this.ring.isClosed) this.arm();
        else this.end();
      }
      return;
    }
    if (res < 0) this.error = socketError(IORING_OP_RECV, res, `fd ${this.fd}`);
    this.end();
  }
}
