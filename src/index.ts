// bun-uring's public surface. Kernel numbers live in "bun-uring/abi"; the simulated ZCRX kernel
// side for test suites in "bun-uring/testing".
export { Ring, CqeBatch, describeCapabilities, type RingOptions, type Capabilities, type FlagChoice } from "./ring/ring.ts";
export { OpTable, type CompletionHandler, OP_SCRATCH_BYTES } from "./ring/optable.ts";
export { kernelRelease, kernelAtLeast, supportedSetupFlags } from "./ring/kernel.ts";
export { allocShared, mapAnonymous, mapFd, unmapRegion, pageAlign, PAGE_SIZE, type SharedRegion, type MappedRegion, type Region } from "./ring/memory.ts";
export { UringError, invalidArgument, unsupported } from "./error.ts";
export * from "./ops/index.ts";
export { addressOf } from "../ffi/index.ts";
export * from "./zcrx/index.ts";
export { registerBuffers, registerBuffersSparse, updateBuffers, unregisterBuffers, registeredBuffers, BufferTable, registerFiles, registerFilesSparse, updateFiles, unregisterFiles, ProvidedBufferRing, bufRingBytes, registerEventfd, unregisterEventfd, registerNapi, unregisterNapi, type BufferView, type ProvidedBufferRingOptions, type NapiSettings, type NapiTracking } from "./ring/register.ts";
export * from "./net/index.ts";
export * from "./zc/index.ts";
export * from "./loop/index.ts";
export * from "./api/index.ts";
