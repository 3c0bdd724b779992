// bun-uring/testing: what bun test suites import to test zero-copy receive code without a
// zero-copy NIC or a 7.1 kernel.
export { SimulatedZcrx, POISON_BYTE, type SimulatedZcrxOptions } from "./zcrx.ts";
export { SimulatedRecvZc, type SimulatedRecvZcOptions } from "./zcrx-async.ts";
export { assertClean } from "./assert.ts";
