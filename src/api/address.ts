// Addresses of the async API as Bun users write them: `host` or `hostname` (Bun.listen and
// Bun.connect spell it `hostname`), a numeric IPv4/IPv6 address or a name. A connect resolves a
// name through Bun's DNS (Bun.dns.lookup) and tries each address in order. A bind is immediate
// (listen() and udp() return at once), so it takes a numeric address or "localhost"; other names
// are refused with the way to resolve them first.
import { ERRNO } from "../abi/errno.ts";
import { UringError, invalidArgument } from "../error.ts";
import { familyOf, type SocketAddress } from "../net/sockaddr.ts";

/** Where to connect or bind. */
export interface HostAddress {
  /** A numeric IPv4 ("127.0.0.1") or IPv6 ("::1", "fe80::1%2") address, or a name to resolve. */
  host?: string;
  /** The same as `host`, as Bun spells it. */
  hostname?: string;
  port: number;
}

/** The host an options object names, checked. */
export function hostOf(where: string, o: HostAddress): string {
  if (o === null || typeof o !== "object")
    throw invalidArgument(where, "expected { host (or hostname): string, port: number }");
  const { host, hostname } = o;
  if (host !== undefined && hostname !== undefined && host !== hostname)
    throw invalidArgument(
      where,
      `host ${JSON.stringify(host)} and hostname ${JSON.stringify(hostname)} differ: give one`,
    );
  const h = host ?? hostname;
  if (typeof h !== "string" || h.length === 0)
    throw invalidArgument(
      where,
      `host (or hostname) must be a non-empty string, got ${h === undefined ? "nothing" : JSON.stringify(h)}`,
    );
  return h;
}

function isNumeric(host: string): boolean {
  try {
    familyOf(host);
    return true;
  } catch {
    return false;
  }
}

/** A numeric address for an immediate bind: numeric hosts as they are, "localhost" as 127.0.0.1
 * (what Bun.listen binds for it too). */
export function bindAddress(where: string, o: HostAddress): SocketAddress {
  const host = hostOf(where, o);
  if (isNumeric(host)) return { host, port: o.port };
  if (host === "localhost") return { host: "127.0.0.1", port: o.port };
  throw invalidArgument(
    where,
    `binds at once, so it needs a numeric address (or "localhost"), got ${JSON.stringify(host)}: resolve it first, e.g. (await Bun.dns.lookup(name))[0].address`,
  );
}

/** The addresses to try for a connect: the host itself when numeric, else what Bun's DNS says
 * for the name, in its order. Rejects with a UringError (dns.lookup, ENOENT) naming the host. */
export async function connectAddresses(where: string, o: HostAddress): Promise<SocketAddress[]> {
  const host = hostOf(where, o);
  if (isNumeric(host)) return [{ host, port: o.port }];
  let found: { address: string }[];
  try {
    found = await Bun.dns.lookup(host);
  } catch (e) {
    throw new UringError(
      "dns.lookup",
      ERRNO.ENOENT!,
      `no address for ${JSON.stringify(host)}: ${(e as { code?: string }).code ?? String(e)}`,
      "the name does not resolve (check its spelling, /etc/hosts and the resolver)",
      { cause: e },
    );
  }
  if (found.length === 0) throw new UringError("dns.lookup", ERRNO.ENOENT!, `no address for ${JSON.stringify(host)}`);
  const seen = new Set<string>();
  const out: SocketAddress[] = [];
  for (const a of found) {
    if (seen.has(a.address)) continue;
    seen.add(a.address);
    out.push({ host: a.address, port: o.port });
  }
  return out;
}

/** Whether a failed connect to one address of a name should go on to the next one. */
export function tryNextAddress(e: unknown): boolean {
  const code = (e as UringError).code;
  return (
    code === "ECONNREFUSED" ||
    code === "ENETUNREACH" ||
    code === "EHOSTUNREACH" ||
    code === "EADDRNOTAVAIL" ||
    code === "EAFNOSUPPORT" ||
    code === "ETIMEDOUT"
  );
}
