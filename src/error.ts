// One error class for everything bun-uring reports: it carries the syscall or opcode that failed,
// the errno name, and the usual cause on that path, so a log line is enough to act on.
import { errnoName, ERRNO } from "./abi/errno.ts";

/** Usual causes, keyed "<where>:<ERRNO>" first, then "*:<ERRNO>". */
const HINTS: Readonly<Record<string, string>> = {
  "io_uring_setup:ENOMEM":
    "the locked-memory limit (RLIMIT_MEMLOCK) is too low for the ring; raise it with `ulimit -l unlimited` (containers: --ulimit memlock=-1)",
  "io_uring_setup:EPERM":
    "io_uring is disabled for this process: check `sysctl kernel.io_uring_disabled` (0 allows all) and seccomp/container policy",
  "io_uring_setup:ENOSYS": "this kernel has no io_uring (needs Linux 5.1+, built with CONFIG_IO_URING)",
  "io_uring_setup:EINVAL": "a setup flag or size this kernel does not accept; see ring.capabilities.setupFlags",
  "io_uring_setup:EMFILE":
    "the process is out of file descriptors (RLIMIT_NOFILE): close rings or sockets it no longer uses, or raise `ulimit -n`",
  "io_uring_register:ENOMEM":
    "registered memory is charged to RLIMIT_MEMLOCK; raise it with `ulimit -l unlimited` (containers: --ulimit memlock=-1) or register less",
  "IORING_REGISTER_BUFFERS2:ENOMEM":
    "registered buffers are charged to RLIMIT_MEMLOCK; raise it with `ulimit -l unlimited` (containers: --ulimit memlock=-1) or register less",
  "IORING_REGISTER_BUFFERS:ENOMEM":
    "registered buffers are charged to RLIMIT_MEMLOCK; raise it with `ulimit -l unlimited` (containers: --ulimit memlock=-1) or register less",
  "IORING_REGISTER_BUFFERS_UPDATE:ENOMEM":
    "registered buffers are charged to RLIMIT_MEMLOCK; raise it with `ulimit -l unlimited` (containers: --ulimit memlock=-1) or register less",
  "IORING_REGISTER_PBUF_RING:ENOMEM":
    "the provided-buffer ring's pages are charged to RLIMIT_MEMLOCK; raise it with `ulimit -l unlimited` (containers: --ulimit memlock=-1)",
  "IORING_REGISTER_FILES2:EMFILE": "more files than RLIMIT_NOFILE allows; raise `ulimit -n` or register fewer",
  "IORING_REGISTER_NAPI:EINVAL": "the ring uses IOPOLL, or a NAPI field this kernel does not know is set",
  "IORING_REGISTER_EVENTFD:EBUSY": "an eventfd is already registered on this ring; unregister it first",
  "IORING_REGISTER_EVENTFD_ASYNC:EBUSY": "an eventfd is already registered on this ring; unregister it first",
  "IORING_REGISTER_PBUF_RING:EEXIST": "a provided-buffer ring with this group id is already registered",
  "IORING_REGISTER_PBUF_RING:EINVAL":
    "ring entries must be a power of two up to 32768 and the ring memory page aligned",
  "IORING_OP_SEND_ZC:EOPNOTSUPP":
    "this socket type cannot do zero-copy sends (AF_UNIX, or a socket without SOCK_SUPPORT_ZC); use a copying SEND",
  "IORING_OP_SENDMSG_ZC:EOPNOTSUPP":
    "this socket type cannot do zero-copy sends (AF_UNIX, or a socket without SOCK_SUPPORT_ZC); use a copying SENDMSG",
  "IORING_OP_SEND_ZC:EFAULT":
    "the buffer is not mapped memory, or (a fixed-buffer send) its range lies outside the registered buffer or the index does not exist",
  "IORING_OP_SEND_ZC:ENOMEM":
    "pinning the send buffer is charged to RLIMIT_MEMLOCK; raise `ulimit -l` or use registered buffers",
  "mmap:ENOMEM": "out of address space or RLIMIT_MEMLOCK reached for locked mappings",
  "*:EBADF": "the file descriptor is not open (closed already, or never valid)",
  "*:ENOTSOCK": "the file descriptor is not a socket",
  "*:ECONNREFUSED": "nothing listens on that address and port",
  "*:ECONNRESET": "the peer reset the connection",
  "*:EPIPE": "the peer closed the connection (or the socket was shut down for writing)",
  "*:EADDRINUSE":
    "another socket is bound to that address and port; pick another port (reuseAddr, on by default for TCP listeners, covers only connections left in TIME_WAIT)",
  "*:ECANCELED": "the operation was cancelled (ASYNC_CANCEL, a failed link, or ring close)",
  "*:ETIME": "the timeout expired",
  "*:EDESTADDRREQ": "an unconnected datagram socket needs a destination address",
  "*:EMSGSIZE": "the datagram is larger than the socket allows",
};

export class UringError extends Error {
  /** errno name ("EINVAL"), or the name for a library-side refusal. */
  readonly code: string;
  /** Positive errno (0 when no errno applies). */
  readonly errno: number;
  /** The syscall, register opcode or IORING_OP_* that failed, or the function that refused. */
  readonly syscall: string;
  /** The usual cause on this path, when one is known. */
  readonly hint: string | undefined;

  constructor(syscall: string, errno: number, detail?: string, hint?: string, options?: { cause?: unknown }) {
    const e = errno < 0 ? -errno : errno;
    const code = errnoName(e);
    const h = hint ?? HINTS[`${syscall}:${code}`] ?? HINTS[`*:${code}`];
    super(`${syscall}: ${code}${detail ? ` (${detail})` : ""}${h ? ` — ${h}` : ""}`, options);
    this.name = "UringError";
    this.code = code;
    this.errno = e;
    this.syscall = syscall;
    this.hint = h;
  }
}

/** How a refused value reads in an error: a string or a bigint is named as such, since "3" and
 * 3n print like the number they are not, and an object by its type. */
export function shown(v: unknown): string {
  if (typeof v === "number") return String(v);
  if (typeof v === "string") return `${JSON.stringify(v)} (a string)`;
  if (typeof v === "bigint") return `${v}n (a bigint)`;
  if (typeof v === "boolean" || v === undefined) return String(v);
  return v === null ? "null" : typeof v;
}

/** An invalid argument caught before anything reached the kernel. */
export function invalidArgument(where: string, detail: string): UringError {
  return new UringError(where, ERRNO.EINVAL!, detail, "invalid argument, refused before reaching the kernel");
}

/** A kernel feature this kernel lacks, naming the first version that has it. */
export function unsupported(where: string, what: string, since: string, release: string): UringError {
  return new UringError(
    where,
    ERRNO.EOPNOTSUPP!,
    `${what} needs Linux ${since} or newer; this kernel is ${release}`,
    "",
  );
}

/** Any use of a closed object. */
export function closedError(where: string, what = "ring"): UringError {
  return new UringError(where, ERRNO.EBADF!, `the ${what} is closed`, "");
}

/** Throw a UringError when a raw liburing call returned -errno; return the value otherwise. */
export function check(ret: number, syscall: string, detail?: string): number {
  if (ret < 0) throw new UringError(syscall, -ret, detail);
  return ret;
}
