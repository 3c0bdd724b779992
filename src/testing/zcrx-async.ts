// socket.recvZc() without a NIC or a 7.1 kernel: the async API's ZcrxStream over the simulated
// kernel side, driven from Bun's event loop the way an AsyncRing's loop driver drives a ring. The
// simulated kernel runs and its CQEs are dispatched once per turn while a receive is armed; the
// driver never publishes refills itself (on a ring it does not either): the streams' RefillTurn
// does, once per turn, as under a real AsyncRing. So an application's async ZCRX code, its
// batching and its releases, can be tested in any bun test suite, and assertClean() says which
// chunks it still holds at the end.
import { invalidArgument } from "../error.ts";
import { ZcrxStream, type ZcrxRecvOptions, type ZcrxStreamHost } from "../api/zcrx.ts";
import type { ReceiverOptions, ZcrxReceiver } from "../zcrx/receiver.ts";
import { SimulatedZcrx, type SimulatedZcrxOptions } from "./zcrx.ts";

export interface SimulatedRecvZcOptions extends SimulatedZcrxOptions {
  /** Options of the receiver the streams share (rearmLowWater, onError, chunkCapacity). */
  receiver?: ReceiverOptions;
}

export class SimulatedRecvZc implements ZcrxStreamHost {
  /** The simulated kernel side: send(), shutdown() and fail() feed its sockets. */
  readonly sim: SimulatedZcrx;
  /** The receiver every stream of this host shares, as on a ring with one ifq. */
  readonly receiver: ZcrxReceiver;
  private readonly streams = new Set<ZcrxStream>();
  private pumping = false;
  private closed = false;
  private readonly pumpTask = (): void => this.pump();

  constructor(options: SimulatedRecvZcOptions = {}) {
    // Device-less zcrx is what runs without a NIC: refills are taken at each publish.
    this.sim = new SimulatedZcrx({ reclaim: "flush", ...options });
    this.receiver = this.sim.createReceiver(options.receiver);
  }

  /** A simulated connected TCP socket; returns its fd for recvZc() and sim.send(). */
  connect(): number {
    return this.sim.connect();
  }

  /** What `socket.recvZc(options)` returns, on the simulated socket `fd`. */
  recvZc(fd: number, options: ZcrxRecvOptions = {}): ZcrxStream {
    if (this.closed) throw invalidArgument("SimulatedRecvZc.recvZc", "this simulated ring was closed");
    const s = new ZcrxStream(this.receiver, fd, this, options);
    this.streams.add(s);
    s.onFinish = () => this.streams.delete(s);
    return s;
  }

  /** @internal — the streams' submit: start dispatching on each turn. */
  kick(): void {
    if (this.pumping || this.closed) return;
    this.pumping = true;
    setImmediate(this.pumpTask);
  }

  /** @internal — IORING_OP_ASYNC_CANCEL of the RECV_ZC on `fd`. */
  cancelRecvZc(fd: number): void {
    this.sim.cancel(fd);
    this.kick();
  }

  /** Streams whose receive is armed or parked. */
  get active(): number {
    return this.streams.size;
  }

  /** Stop the driver and close the receiver (as closing the ring does). Chunks still held must
   * not be read after this. */
  close(): void {
    this.closed = true;
    this.receiver.close();
  }

  /** One turn of the driver: run the simulated kernel, dispatch its CQEs; again next turn while
   * any stream has its receive armed or parked (a parked one needs no CQE, but its re-arm comes
   * from a publish, and the pump must be running to see what that brings). */
  private pump(): void {
    this.pumping = false;
    if (this.closed) return;
    this.sim.reap(0, undefined);
    if (this.streams.size > 0) this.kick();
  }
}
