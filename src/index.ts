// bun-uring: what an application imports. The async API inside Bun's event loop (openRing and the
// sockets it makes), the ring itself (Ring), zero-copy send (ZcSender, FixedBufferPool), zero-copy
// receive (ZCRX: the ifq, the receiver, sharing a queue between rings and Workers), closing what a
// terminated Worker left open (reclaimWorker) and the one error type every failure throws
// (UringError).
//
// The other entry points:
//   bun-uring/ring     the raw layer: prep functions, SQE views, the op table, registration,
//                      memory, sockaddr codec, callback-form socket ops
//   bun-uring/sync     synchronous socket helpers that drive a Ring until done (tcpConnect...)
//   bun-uring/abi      kernel numbers: opcodes, flags, struct offsets, errno
//   bun-uring/testing  a simulated ZCRX kernel side for test suites
//
// test/exports.test.ts pins the runtime names of each entry point: a change is deliberate.
export {
  openRing,
  AsyncRing,
  TcpListener,
  type OpenRingOptions,
  type ConnectOptions,
  type ListenOptions,
  type AcceptOptions,
  type UdpOptions,
} from "./api/ring.ts";
export { AsyncSocket, TcpSocket, UdpSocket, type SendStats } from "./api/socket.ts";
export { SendOp, type SendOptions } from "./api/send.ts";
export { RecvStream, RecvFromStream, TimeoutError, type Datagram, type RecvStreamOptions } from "./api/recv.ts";
export type { SocketHandlers } from "./api/handlers.ts";
export type { SocketOptions } from "./api/sockopt.ts";
export type { HostAddress } from "./api/address.ts";
export { ZcrxStream, ZcrxChunk, type ZcrxRecvOptions } from "./api/zcrx.ts";

export {
  Ring,
  describeCapabilities,
  type RingOptions,
  type Capabilities,
  type FlagChoice,
  type RingLayout,
} from "./ring/ring.ts";
// What a terminated Worker left open (its rings, eventfds, sockets) is closed from another thread.
export { reclaimWorker, reclaimDeadThreads, type ReclaimReport } from "./ring/reclaim.ts";
export { UringError } from "./error.ts";

export {
  ZcSender,
  FixedBufferPool,
  type ZcMode,
  type ZcUsage,
  type ZcSenderOptions,
  type ZcStats,
  type ZcSizeClass,
  type FixedBufferPoolOptions,
} from "./zc/index.ts";

export {
  ZcrxIfq,
  registerZcrxIfq,
  importZcrx,
  ImportedZcrx,
  sharedQueueFrom,
  type ZcrxIfqOptions,
  type ZcrxSharedQueue,
  type PostableZcrxQueue,
  type ZcrxPlacement,
} from "./zcrx/ifq.ts";
export {
  ZcrxReceiver,
  type RecvZcHandler,
  type RecvOptions,
  type ReceiverOptions,
  type ZcrxSource,
} from "./zcrx/receiver.ts";
export type { ZcrxStats } from "./zcrx/stats.ts";
export { RefillLock } from "./zcrx/refill-lock.ts";
export { queryZcrx, type ZcrxQuery } from "./zcrx/query.ts";
export { planZcrxWorkers, startZcrxWorkers, type ZcrxWorkerPlan, type PlanOptions } from "./zcrx/workers.ts";
