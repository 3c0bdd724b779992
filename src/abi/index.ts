// bun-uring/abi: the kernel ABI as data. Every offset and constant bun-uring writes is defined
// once, here: opcodes, flags, struct layouts, errno names, and the version each appeared in.
export * from "./setup.ts";
export * from "./sqe.ts";
export * from "./register.ts";
export * from "./zcrx.ts";
export * from "./net.ts";
export * from "./errno.ts";
export * from "./stat.ts";
