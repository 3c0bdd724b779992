// Sockets through the ring, and sockaddr encoding.
//
// API summary
//   Addresses (sockaddr.ts)
//     sockaddr({host, port}) -> Sockaddr {family, bytes, length, host, port}   parse once, reuse
//     encodeSockaddr(view, offset, {host, port}) -> length                     sockaddr_in / _in6
//     decodeSockaddr(view, offset) -> {family, host, port, scopeId}
//     familyOf(host), formatAddress({host, port}), parseIPv4, parseIPv6
//   Callback form (socket.ts): queue one SQE, handler(data, res, flags, index) gets its CQE(s);
//   res < 0 is -errno (socketError(op, res, detail) makes the UringError). Returns user_data.
//     submitSocket(ring, domain, type, protocol, handler, data)       SOCKET 5.19, res = fd
//     submitBind(ring, fd, addr: Sockaddr, handler, data)             BIND 6.11
//     submitListen(ring, fd, backlog, handler, data)                  LISTEN 6.11
//     submitConnect(ring, fd, addr: Sockaddr, handler, data)          CONNECT 5.5
//     submitAccept(ring, fd, handler, data, multishot?)               ACCEPT 5.5 / multishot 5.19
//     submitShutdown(ring, fd, how, handler, data)                    SHUTDOWN 5.11
//     submitClose(ring, fd, handler, data)                            CLOSE 5.6
//     submitSetsockopt(ring, fd, level, optname, value, handler, data) URING_CMD setsockopt 6.7
//     netSupport(ring), ringSetsockopt(ring): which of these the kernel has
//   Synchronous helpers (drive the ring with runUntil; libc fallback when the opcode is missing,
//   or forced with {via: "libc"}; {via: "ring"} refuses the fallback):
//     tcpListen(ring, {host, port, backlog?, reuseAddr?, ipv6Only?}) -> {fd, address}
//     tcpConnect(ring, {host, port, noDelay?}) -> fd
//     tcpAccept(ring, listenFd) -> fd
//     udpSocket(ring, {host, port, connect?}) -> {fd, address}
//     openSocket, bindSocket, listenSocket, connectSocket, acceptSocket, shutdownSocket,
//     closeSocket, setSocketOption(ring, fd, level, optname, intValue)
//     sendAll(ring, fd, bytes), recvSome(ring, fd, buf), recvExact(ring, fd, buf)
//     localAddress(fd), peerAddress(fd) (getsockname/getpeername), closeQuietly(fd)
//   new RecvLoop(ring, fd, {bufferSize?, onData?(bytes), discard?}): keeps one RECV armed;
//     .bytes, .recvs, .done (peer closed or error), .error, .stop()
//   Errors: UringError with syscall "IORING_OP_CONNECT" (or "connect" on the libc path), code
//   "ECONNREFUSED", and the usual cause, e.g.
//   "IORING_OP_CONNECT: ECONNREFUSED (fd 7 to 127.0.0.1:1) — nothing listens on that address and port".
export * from "./sockaddr.ts";
export * from "./socket.ts";
export * from "./recv.ts";
