// The only module that imports bun:ffi. Everything native that bun-uring calls is in the two
// symbol tables below, each with its C prototype beside it. liburing is used for its raw syscall
// wrappers only (io_uring_setup / io_uring_enter2 / io_uring_register): they return -errno, so no
// errno read is needed for them. libc calls return -1 and leave errno, read through
// __errno_location (thread-local, so each Worker loads this module and gets its own pointer).
import { dlopen, FFIType, CString, ptr as ffiPtr, read as ffiRead, toArrayBuffer as ffiToArrayBuffer } from "bun:ffi";
import { invalidArgument } from "../src/error.ts";

/** A pointer argument: a typed array or DataView (never a bare ArrayBuffer, which bun:ffi cannot
 * take), an address as a number, or null. */
export type Pointer = NodeJS.TypedArray | DataView | number | null;

const liburingSymbols = {
  // int io_uring_setup(unsigned entries, struct io_uring_params *p);
  io_uring_setup: { args: ["u32", "ptr"], returns: "i32" },
  // int io_uring_enter2(unsigned fd, unsigned to_submit, unsigned min_complete,
  //                     unsigned flags, sigset_t *sig /* or ext arg */, size_t sz);
  io_uring_enter2: { args: ["u32", "u32", "u32", "u32", "ptr", "usize"], returns: "i32" },
  // int io_uring_register(unsigned fd, unsigned opcode, const void *arg, unsigned nr_args);
  io_uring_register: { args: ["u32", "u32", "ptr", "u32"], returns: "i32" },
} as const;

const liburingFallbackSymbols = {
  // int io_uring_enter(unsigned fd, unsigned to_submit, unsigned min_complete,
  //                    unsigned flags, sigset_t *sig);  (no ext-arg size: used only without one)
  io_uring_enter: { args: ["u32", "u32", "u32", "u32", "ptr"], returns: "i32" },
} as const;

const libcSymbols = {
  // void *mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset);
  mmap: { args: ["ptr", "usize", "i32", "i32", "i32", "i64"], returns: FFIType.i64_fast },
  // int munmap(void *addr, size_t length);
  munmap: { args: ["ptr", "usize"], returns: "i32" },
  // int madvise(void *addr, size_t length, int advice);
  madvise: { args: ["ptr", "usize", "i32"], returns: "i32" },
  // int close(int fd);
  close: { args: ["i32"], returns: "i32" },
  // ssize_t read(int fd, void *buf, size_t count);
  read: { args: ["i32", "ptr", "usize"], returns: FFIType.i64_fast },
  // ssize_t write(int fd, const void *buf, size_t count);
  write: { args: ["i32", "ptr", "usize"], returns: FFIType.i64_fast },
  // int eventfd(unsigned int initval, int flags);
  eventfd: { args: ["u32", "i32"], returns: "i32" },
  // int socket(int domain, int type, int protocol);
  socket: { args: ["i32", "i32", "i32"], returns: "i32" },
  // int bind(int sockfd, const struct sockaddr *addr, socklen_t addrlen);
  bind: { args: ["i32", "ptr", "u32"], returns: "i32" },
  // int listen(int sockfd, int backlog);
  listen: { args: ["i32", "i32"], returns: "i32" },
  // int accept4(int sockfd, struct sockaddr *addr, socklen_t *addrlen, int flags);
  accept4: { args: ["i32", "ptr", "ptr", "i32"], returns: "i32" },
  // int connect(int sockfd, const struct sockaddr *addr, socklen_t addrlen);
  connect: { args: ["i32", "ptr", "u32"], returns: "i32" },
  // int shutdown(int sockfd, int how);
  shutdown: { args: ["i32", "i32"], returns: "i32" },
  // int setsockopt(int fd, int level, int optname, const void *optval, socklen_t optlen);
  setsockopt: { args: ["i32", "i32", "i32", "ptr", "u32"], returns: "i32" },
  // int getsockopt(int fd, int level, int optname, void *optval, socklen_t *optlen);
  getsockopt: { args: ["i32", "i32", "i32", "ptr", "ptr"], returns: "i32" },
  // int getsockname(int fd, struct sockaddr *addr, socklen_t *addrlen);
  getsockname: { args: ["i32", "ptr", "ptr"], returns: "i32" },
  // int getpeername(int fd, struct sockaddr *addr, socklen_t *addrlen);
  getpeername: { args: ["i32", "ptr", "ptr"], returns: "i32" },
  // ssize_t recv(int sockfd, void *buf, size_t len, int flags);
  recv: { args: ["i32", "ptr", "usize", "i32"], returns: FFIType.i64_fast },
  // ssize_t send(int sockfd, const void *buf, size_t len, int flags);
  send: { args: ["i32", "ptr", "usize", "i32"], returns: FFIType.i64_fast },
  // unsigned int if_nametoindex(const char *ifname);
  if_nametoindex: { args: ["ptr"], returns: "u32" },
  // int getrlimit(int resource, struct rlimit *rlim);
  getrlimit: { args: ["i32", "ptr"], returns: "i32" },
  // int setrlimit(int resource, const struct rlimit *rlim);
  setrlimit: { args: ["i32", "ptr"], returns: "i32" },
  // int *__errno_location(void);
  __errno_location: { args: [], returns: "ptr" },
  // long sysconf(int name);
  sysconf: { args: ["i32"], returns: FFIType.i64_fast },
  // int sched_setaffinity(pid_t pid, size_t cpusetsize, const cpu_set_t *mask);
  sched_setaffinity: { args: ["i32", "usize", "ptr"], returns: "i32" },
  // int getrusage(int who, struct rusage *usage);
  getrusage: { args: ["i32", "ptr"], returns: "i32" },
  // int pipe2(int pipefd[2], int flags);
  pipe2: { args: ["ptr", "i32"], returns: "i32" },
  // int socketpair(int domain, int type, int protocol, int sv[2]);
  socketpair: { args: ["i32", "i32", "i32", "ptr"], returns: "i32" },
  // int fstat(int fd, struct stat *statbuf);  (exported by glibc since 2.33)
  fstat: { args: ["i32", "ptr"], returns: "i32" },
  // pid_t gettid(void);  (glibc 2.30)
  gettid: { args: [], returns: "i32" },
  // pid_t getpid(void);
  getpid: { args: [], returns: "i32" },
  // char *getenv(const char *name);
  getenv: { args: ["ptr"], returns: "ptr" },
  // int setenv(const char *name, const char *value, int overwrite);
  setenv: { args: ["ptr", "ptr", "i32"], returns: "i32" },
} as const;

/** Raised when liburing.so.2 or libc.so.6 cannot be loaded; `cause` keeps dlopen's error. */
export class NativeLoadError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "NativeLoadError";
  }
}

const LIBURING_DEFAULT = "liburing.so.2";

/** The liburing calls, typed as bun-uring uses them (pointers are typed arrays, addresses or
 * null; every result is a number). */
export interface LiburingCalls {
  io_uring_setup(entries: number, params: Pointer): number;
  io_uring_enter2(
    fd: number,
    toSubmit: number,
    minComplete: number,
    flags: number,
    arg: Pointer,
    argSize: number,
  ): number;
  io_uring_register(fd: number, opcode: number, arg: Pointer, nrArgs: number): number;
}

/** The libc calls, typed as bun-uring uses them. */
export interface LibcCalls {
  mmap(addr: Pointer, length: number, prot: number, flags: number, fd: number, offset: number): number;
  munmap(addr: Pointer, length: number): number;
  madvise(addr: Pointer, length: number, advice: number): number;
  close(fd: number): number;
  read(fd: number, buf: Pointer, count: number): number;
  write(fd: number, buf: Pointer, count: number): number;
  eventfd(initval: number, flags: number): number;
  socket(domain: number, type: number, protocol: number): number;
  bind(fd: number, addr: Pointer, addrlen: number): number;
  listen(fd: number, backlog: number): number;
  accept4(fd: number, addr: Pointer, addrlen: Pointer, flags: number): number;
  connect(fd: number, addr: Pointer, addrlen: number): number;
  shutdown(fd: number, how: number): number;
  setsockopt(fd: number, level: number, optname: number, optval: Pointer, optlen: number): number;
  getsockopt(fd: number, level: number, optname: number, optval: Pointer, optlen: Pointer): number;
  getsockname(fd: number, addr: Pointer, addrlen: Pointer): number;
  getpeername(fd: number, addr: Pointer, addrlen: Pointer): number;
  recv(fd: number, buf: Pointer, len: number, flags: number): number;
  send(fd: number, buf: Pointer, len: number, flags: number): number;
  if_nametoindex(name: Pointer): number;
  getrlimit(resource: number, rlim: Pointer): number;
  setrlimit(resource: number, rlim: Pointer): number;
  __errno_location(): number;
  sysconf(name: number): number;
  sched_setaffinity(pid: number, size: number, mask: Pointer): number;
  getrusage(who: number, usage: Pointer): number;
  pipe2(fds: Pointer, flags: number): number;
  socketpair(domain: number, type: number, protocol: number, sv: Pointer): number;
  fstat(fd: number, statbuf: Pointer): number;
  gettid(): number;
  getpid(): number;
  getenv(name: Pointer): number | null;
  setenv(name: Pointer, value: Pointer, overwrite: number): number;
}

type LiburingSymbols = LiburingCalls;

function installHint(path: string, detail: string): string {
  return (
    `cannot load ${path}: ${detail}. bun-uring calls liburing's raw wrappers io_uring_setup, ` +
    `io_uring_enter2 and io_uring_register (exported since liburing 2.3). On Debian or Ubuntu: ` +
    `apt-get install liburing2. Set BUN_URING_LIBURING to load another path.`
  );
}

function openLiburing(): { symbols: LiburingSymbols; path: string; hasEnter2: boolean } {
  const path = process.env.BUN_URING_LIBURING || LIBURING_DEFAULT;
  try {
    return { symbols: dlopen(path, liburingSymbols).symbols as unknown as LiburingCalls, path, hasEnter2: true };
  } catch (first) {
    // A liburing without io_uring_enter2 can still drive the ring; only the extended argument
    // (timeouts on waits) is lost, and enter2 is emulated by io_uring_enter with sz == 0.
    let lib;
    try {
      const { io_uring_enter2: _unused, ...rest } = liburingSymbols;
      lib = dlopen(path, { ...rest, ...liburingFallbackSymbols });
    } catch {
      throw new NativeLoadError(installHint(path, (first as Error).message), { cause: first });
    }
    const s = lib.symbols as unknown as LiburingCalls & {
      io_uring_enter(fd: number, toSubmit: number, minComplete: number, flags: number, sig: Pointer): number;
    };
    const enter2 = (fd: number, toSubmit: number, minComplete: number, flags: number, arg: Pointer, sz: number) =>
      sz === 0 ? s.io_uring_enter(fd, toSubmit, minComplete, flags, arg) : -22; // EINVAL
    return {
      symbols: { io_uring_setup: s.io_uring_setup, io_uring_register: s.io_uring_register, io_uring_enter2: enter2 },
      path,
      hasEnter2: false,
    };
  }
}

function openLibc() {
  try {
    return dlopen("libc.so.6", libcSymbols);
  } catch (cause) {
    throw new NativeLoadError(`cannot load libc.so.6: ${(cause as Error).message}`, { cause });
  }
}

const uring = openLiburing();
const libc = openLibc();

/** The liburing path that was loaded (BUN_URING_LIBURING or the soname). */
export const liburingPath = uring.path;

/** liburing raw syscall wrappers; each returns a result >= 0 or -errno. */
export const sys = uring.symbols;

/** False when the loaded liburing lacks io_uring_enter2: waits with a timeout are then refused. */
export const hasEnter2 = uring.hasEnter2;

/** libc calls; each returns -1 (or MAP_FAILED = -1 for mmap) and sets errno on failure. */
export const c = libc.symbols as unknown as LibcCalls;

const errnoAddress = c.__errno_location();

/** errno of the last failed libc call on this thread. */
export function errno(): number {
  return ffiRead.i32(errnoAddress as never, 0);
}

/** JSC's JSArrayBufferView::fastSizeLimit, in elements: smaller typed arrays start in the GC heap. */
const FAST_TYPED_ARRAY_LIMIT = 1000;

/** Address of a typed array's first byte. The array must be kept alive by the caller for as long
 * as native code may use the address: `ptr()` itself holds no reference (oven-sh/bun#9094). */
export function addressOf(view: NodeJS.TypedArray | DataView): number {
  // ptr() throws a bare TypeError for these; the library's own error names the cause instead.
  if (!ArrayBuffer.isView(view))
    throw invalidArgument(
      "addressOf",
      "needs a typed array or DataView (a bare ArrayBuffer is not a pointer bun:ffi can pass)",
    );
  if (view.byteLength === 0)
    throw invalidArgument("addressOf", "the view is empty or its ArrayBuffer was detached (transferred)");
  // JSC keeps a small typed array's bytes inside the GC heap until its .buffer is first asked
  // for, and then moves them out: an address taken before that would dangle
  // (oven-sh/bun#32054). Asking for .buffer first pins the bytes where they will stay.
  if (view.byteOffset === 0 && !(view instanceof DataView) && view.length < FAST_TYPED_ARRAY_LIMIT) void view.buffer;
  return ffiPtr(view) as unknown as number;
}

/** A non-owning ArrayBuffer over native memory (mmap'd ring or refill memory). No deallocator:
 * the owner unmaps it explicitly. */
export function viewNative(address: number, byteLength: number): ArrayBuffer {
  return ffiToArrayBuffer(address as never, 0, byteLength);
}

export const readNative = ffiRead;

/** A NUL-terminated copy of `s` for a `const char *` argument. */
function cString(s: string): Uint8Array {
  return new TextEncoder().encode(`${s}\0`);
}

/** The C environment's value of `name` (libc's environ, one per process and shared by every
 * thread, unlike a Worker's process.env), or null. */
export function getenvNative(name: string): string | null {
  const p = c.getenv(cString(name));
  return p === null || p === 0 ? null : new CString(p as never).toString();
}

/** setenv(3) in libc's environ. With `overwrite` false an existing value is kept (glibc takes its
 * environment lock, so of two threads setting the same name only the first one's value stays).
 * Returns false when libc refused (errno set). */
export function setenvNative(name: string, value: string, overwrite: boolean): boolean {
  return c.setenv(cString(name), cString(value), overwrite ? 1 : 0) === 0;
}
