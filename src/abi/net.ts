// Socket constants and struct layouts for x86_64 Linux (glibc and kernel agree on these).

export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

export const SOL_SOCKET = 1;
export const SO_REUSEADDR = 2;
export const SO_ERROR = 4;
export const SO_SNDBUF = 7;
export const SO_RCVBUF = 8;
export const SO_RCVBUFFORCE = 33; // needs CAP_NET_ADMIN; passes net.core.rmem_max
export const SO_REUSEPORT = 15;
export const SO_INCOMING_CPU = 49;
export const SO_ZEROCOPY = 60;
export const SO_BINDTODEVICE = 25;
export const TCP_NODELAY = 1;
/** SO_KEEPALIVE (SOL_SOCKET): send keepalive probes on an idle connection. */
export const SO_KEEPALIVE = 9;
/** TCP keepalive tuning (IPPROTO_TCP, include/uapi/linux/tcp.h): idle seconds before the first
 * probe, seconds between probes, probes before the connection is dropped. */
export const TCP_KEEPIDLE = 4;
export const TCP_KEEPINTVL = 5;
export const TCP_KEEPCNT = 6;
export const IPPROTO_IPV6 = 41;
export const IPV6_V6ONLY = 26;

export const MSG_DONTWAIT = 0x40;
export const MSG_TRUNC = 0x20;
export const MSG_WAITALL = 0x100;
export const MSG_NOSIGNAL = 0x4000;
export const MSG_MORE = 0x8000;
export const MSG_ZEROCOPY = 0x4000000;

export const SHUT_RD = 0;
export const SHUT_WR = 1;
export const SHUT_RDWR = 2;

/** struct sockaddr_in (16 bytes); port and address in network byte order. */
export const SOCKADDR_IN = { size: 16, family: 0, port: 2, addr: 4 } as const;
/** struct sockaddr_in6 (28 bytes). */
export const SOCKADDR_IN6 = { size: 28, family: 0, port: 2, flowinfo: 4, addr: 8, scope_id: 24 } as const;
/** struct sockaddr_storage size: the largest sockaddr the kernel may write back. */
export const SOCKADDR_STORAGE_SIZE = 128;

/** struct msghdr (56 bytes). */
export const MSGHDR = {
  size: 56,
  msg_name: 0,
  msg_namelen: 8,
  msg_iov: 16,
  msg_iovlen: 24,
  msg_control: 32,
  msg_controllen: 40,
  msg_flags: 48,
} as const;

/** mmap(2) / madvise(2) constants. */
export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_ANONYMOUS = 0x20;
export const MAP_POPULATE = 0x8000;
export const MAP_HUGETLB = 0x40000;
export const MADV_DONTNEED = 4;
export const MADV_HUGEPAGE = 14;

/** eventfd(2) flags. */
export const EFD_CLOEXEC = 0o2000000;
export const EFD_NONBLOCK = 0o4000;

/** getrlimit(2) resources; struct rlimit is two u64 (cur, max). */
export const RLIMIT_MEMLOCK = 8;
export const RLIM_INFINITY = 2 ** 64 - 1;

/** sysconf(3) name for the page size. */
export const _SC_PAGESIZE = 30;

/** struct rusage: ru_utime and ru_stime (struct timeval, 16 bytes each) lead it. */
export const RUSAGE = { size: 144, utime: 0, stime: 16 } as const;
export const RUSAGE_SELF = 0;
export const RUSAGE_THREAD = 1;

// fcntl.h open flags (x86_64 and aarch64 agree), for pipe2(2).
export const O_NONBLOCK = 0o4000;
export const O_CLOEXEC = 0o2000000;

/** getsockopt(SOL_SOCKET) names for a socket's type and family (SO_DOMAIN since 2.6.32). */
export const SO_TYPE = 3;
export const SO_DOMAIN = 39;
/** SO_LINGER takes struct linger { int l_onoff; int l_linger; } (8 bytes); l_onoff 1 with
 * l_linger 0 makes close() reset the connection. */
export const SO_LINGER = 13;
export const LINGER_SIZE = 8;

/** IFNAMSIZ: interface names are at most IFNAMSIZ - 1 bytes plus the NUL. */
export const IFNAMSIZ = 16;

/** Capability bits in /proc/PID/status CapEff (linux/capability.h, since 2.2). */
export const CAP_NET_ADMIN = 12;
export const CAP_IPC_LOCK = 14;

/** struct io_uring_recvmsg_out (16 bytes, since 6.0): what a multishot IORING_OP_RECVMSG writes at
 * the start of each provided buffer, followed by the name (msghdr.msg_namelen bytes reserved),
 * the control data (msg_controllen reserved), then the payload (liburing io_uring_recvmsg_name /
 * io_uring_recvmsg_payload). `namelen` and `controllen` are what the kernel filled in, `payloadlen`
 * the datagram's size as sock_recvmsg returned it (the full size when MSG_TRUNC was asked for),
 * `flags` the msg_flags (MSG_TRUNC when the payload did not fit). */
export const IO_URING_RECVMSG_OUT = { size: 16, namelen: 0, controllen: 4, payloadlen: 8, flags: 12 } as const;
