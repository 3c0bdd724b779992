// The Bun-native async API: openRing() and the sockets it makes.
export {
  openRing,
  AsyncRing,
  TcpListener,
  type OpenRingOptions,
  type ConnectOptions,
  type ListenOptions,
  type AcceptOptions,
  type UdpOptions,
} from "./ring.ts";
export { AsyncSocket, TcpSocket, UdpSocket, type SendStats } from "./socket.ts";
export { SendOp, type SendOptions } from "./send.ts";
export {
  RecvStream,
  RecvFromStream,
  RecvStreamBase,
  RECVFROM_HEADER_BYTES,
  TimeoutError,
  type Datagram,
  type RecvStreamOptions,
  abortError,
} from "./recv.ts";
export type { SocketHandlers } from "./handlers.ts";
export type { SocketOptions } from "./sockopt.ts";
export type { HostAddress } from "./address.ts";
export { ZcrxStream, ZcrxChunk, type ZcrxRecvOptions, type ZcrxStreamHost } from "./zcrx.ts";
