// bun-uring/ring: the raw layer, for code that drives io_uring itself. Ring hands out SQ slots;
// the prep functions fill a whole 64-byte slot for one opcode (prepRw for an opcode without its
// own); the checked writers (setOpFlags, setIoprio, setBufIndex, addSqeFlags, setUserData) adjust a
// prepared slot; the op table maps each user_data to a handler and keeps the memory the kernel may
// touch alive until the operation's last CQE. Registration (buffers, files, provided-buffer rings,
// eventfd, NAPI), shared and mapped memory, the sockaddr codec, and the socket operations in
// callback form (submitConnect...: one SQE, the handler gets the CQE) are here too, as is
// LoopDriver, which runs a Ring's completions inside Bun's event loop.
//
// The application owns what each SQE means and submits and reaps it itself; kernel numbers come
// from bun-uring/abi. Most applications want the async API in "bun-uring" instead.
export {
  Ring,
  CqeBatch,
  describeCapabilities,
  type RingOptions,
  type Capabilities,
  type FlagChoice,
} from "./ring/ring.ts";
export { OpTable, OP_SCRATCH_BYTES, type CompletionHandler } from "./ring/optable.ts";
export { kernelRelease, kernelAtLeast, supportedSetupFlags } from "./ring/kernel.ts";
export {
  allocShared,
  mapAnonymous,
  mapFd,
  unmapRegion,
  pageAlign,
  PAGE_SIZE,
  type SharedRegion,
  type MappedRegion,
  type Region,
} from "./ring/memory.ts";
export {
  registerBuffers,
  registerBuffersSparse,
  updateBuffers,
  unregisterBuffers,
  registeredBuffers,
  BufferTable,
  registerFiles,
  registerFilesSparse,
  updateFiles,
  unregisterFiles,
  ProvidedBufferRing,
  bufRingBytes,
  registerEventfd,
  unregisterEventfd,
  registerNapi,
  unregisterNapi,
  type BufferView,
  type ProvidedBufferRingOptions,
  type NapiSettings,
  type NapiTracking,
} from "./ring/register.ts";
export {
  type SqeMemory,
  sqeMemory,
  prepRw,
  prepRwFlags,
  setOpFlags,
  setIoprio,
  setBufIndex,
  addSqeFlags,
  setUserData,
  type SqeFlagOptions,
  sqeFlags,
} from "./ops/index.ts";
export * from "./ops/prep.ts";
export { addressOf } from "../ffi/index.ts";
export {
  sockaddr,
  encodeSockaddr,
  decodeSockaddr,
  familyOf,
  formatAddress,
  parseIPv4,
  parseIPv6,
  SOCKADDR_MAX_BYTES,
  SOCKADDR_RETURN_BYTES,
  type SocketAddress,
  type DecodedAddress,
  type Sockaddr,
} from "./net/sockaddr.ts";
export {
  submitSocket,
  submitBind,
  submitListen,
  submitConnect,
  submitAccept,
  submitShutdown,
  submitClose,
  submitSetsockopt,
  ringSetsockopt,
  netSupport,
  socketError,
} from "./net/submit.ts";
export { LoopDriver, type LoopDriverOptions } from "./loop/driver.ts";
export { UringError } from "./error.ts";
