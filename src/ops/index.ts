export * from "./sqe.ts";
export * from "./prep.ts";
