// bun-uring/sync: synchronous socket helpers over a Ring, for scripts, tools and tests. Each call
// queues its operation, drives the ring with runUntil until the completion arrives (or timeoutMs,
// default 10 s, passes: ETIME naming the opcode) and returns the result or throws a UringError.
// The ring path is used where the kernel has the opcode (SOCKET 5.19, BIND and LISTEN 6.11,
// CONNECT and ACCEPT 5.5, setsockopt through URING_CMD 6.7), libc otherwise; {via: "libc"} forces
// the libc path and {via: "ring"} refuses the fallback. They block the thread: inside Bun's event
// loop use the async API in "bun-uring". RecvLoop keeps one RECV armed on a socket and counts (or
// hands over) what arrives while the caller runs the ring: a plain receiver to measure against.
export {
  tcpListen, tcpConnect, tcpAccept, udpSocket,
  openSocket, bindSocket, listenSocket, connectSocket, acceptSocket, shutdownSocket, closeSocket,
  setSocketOption, sendAll, recvSome, recvExact, localAddress, peerAddress, closeQuietly,
  type NetPath, type SyncOptions, type TcpListenOptions, type TcpConnectOptions, type UdpSocketOptions,
  type BoundSocket,
} from "./net/socket.ts";
export { RecvLoop, type RecvLoopOptions } from "./net/recv.ts";
