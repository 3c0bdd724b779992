// Bun.listen / Bun.connect-shaped handlers over the async API: `socket: { open, data, drain, end,
// close, error }`. No second engine: each socket is driven by one task that iterates its recv()
// stream and calls the handlers, and writes are the socket's own send(). What differs from Bun's
// handlers follows from that:
// - `data` gets a chunk that is valid until the handler returns (or, if it returns a promise,
//   until that settles); `sock.send(chunk)` inside it is the zero-copy echo.
// - A send never comes back short (it queues), so `drain` is called after the socket's queue had
//   reached `maxInflightSends` and went below it again. The socket stops reading while it is
//   full, which is how backpressure reaches the peer.
// - `end` is the peer's EOF. The socket is then closed (Bun's allowHalfOpen: false), and `close`
//   gets the first error the socket met, or null.
// - A handler that throws (or rejects) goes to `error`, and the socket is closed. Without an
//   `error` handler it is rethrown as an uncaught error, as an exception in any callback is.
import { type UringError, invalidArgument, shown } from "../error.ts";
import type { TcpSocket } from "./socket.ts";

export interface SocketHandlers {
  /** A connection is ready (accepted, or connected). */
  open?(socket: TcpSocket): void | Promise<void>;
  /** Received bytes: valid until the handler (or the promise it returns) is done. */
  data?(socket: TcpSocket, data: Uint8Array): void | Promise<void>;
  /** The send queue was full and has room again. */
  drain?(socket: TcpSocket): void;
  /** The peer closed its side (EOF). */
  end?(socket: TcpSocket): void;
  /** The socket is closed; `error` is the first error it met, or null. */
  close?(socket: TcpSocket, error: UringError | null): void;
  /** A handler threw, or the connection failed; `socket` is null for a failed accept. */
  error?(socket: TcpSocket | null, error: unknown): void;
}

/** Check a handlers object at the edge. */
export function checkHandlers(where: string, h: unknown): SocketHandlers {
  if (h === null || typeof h !== "object")
    throw invalidArgument(
      where,
      `socket must be an object of handlers (open, data, drain, end, close, error), got ${shown(h)}`,
    );
  for (const name of ["open", "data", "drain", "end", "close", "error"] as const) {
    const f = (h as Record<string, unknown>)[name];
    if (f !== undefined && typeof f !== "function")
      throw invalidArgument(where, `socket.${name} must be a function, got ${shown(f)}`);
  }
  return h as SocketHandlers;
}

/** Hand `e` to the error handler, or rethrow it as an uncaught error when there is none. */
export function reportHandlerError(socket: TcpSocket | null, h: SocketHandlers, e: unknown): void {
  if (h.error === undefined) {
    queueMicrotask(() => {
      throw e;
    });
    return;
  }
  try {
    h.error(socket, e);
  } catch (again) {
    queueMicrotask(() => {
      throw again;
    });
  }
}

/** Drive `socket` with `h` until it closes. Never rejects. */
export async function drive(socket: TcpSocket, h: SocketHandlers, maxInflightSends: number): Promise<void> {
  try {
    if (h.open !== undefined) await h.open(socket);
    for await (const chunk of socket.recv()) {
      if (h.data !== undefined) {
        const r = h.data(socket, chunk);
        if (r !== undefined && typeof (r as Promise<void>).then === "function") await r;
      }
      if (socket.pendingSends >= maxInflightSends) {
        await socket.ready();
        if (h.drain !== undefined && !socket.isClosed) h.drain(socket);
      }
    }
    if (h.end !== undefined && !socket.isClosed) h.end(socket);
  } catch (e) {
    reportHandlerError(socket, h, e);
  }
  await socket.close();
  const err = await socket.closed;
  if (h.close !== undefined) {
    try {
      h.close(socket, err);
    } catch (e) {
      reportHandlerError(socket, h, e);
    }
  }
}
