// Running a ring inside Bun's event loop.
export { LoopDriver, type LoopDriverOptions } from "./driver.ts";
