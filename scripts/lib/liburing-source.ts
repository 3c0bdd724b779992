// liburing's examples/send-zerocopy, built from Debian's liburing source package (the unstable
// suite, 2.15 when this was written) for the interoperability tests. The source comes through a
// private apt tree (scripts/vm/apt.ts) with a deb-src line for the machine's own archive, so the
// machine's apt state is never touched; the static library and the example are built with gcc in
// a temporary directory, and the binary is kept in the cache so later runs need neither network
// nor compiler.
import {
  copyFileSync,
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
  readFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { aptUpdate, archiveLine, privateApt } from "../vm/apt.ts";
import { defaultCacheDir, ensureDir } from "../vm/cache.ts";
import { run, runChecked, which } from "../vm/proc.ts";

/** The suite whose liburing source is built. */
export const LIBURING_SUITE = "unstable";

export type Built = { path: string; version: string } | { skip: string };

/** Where the built example is kept: beside the VM tier's cache. */
export function interopCacheDir(env = process.env): string {
  return join(defaultCacheDir(env), "..", "interop");
}

/** The cached send-zerocopy binary, building it first if needed; `skip` says why it cannot be had
 * (no gcc, no archive, a failed build). At most `budgetMs` is spent fetching and building. */
export async function sendZerocopy(budgetMs = 120_000): Promise<Built> {
  const dir = ensureDir(interopCacheDir());
  const bin = join(dir, "send-zerocopy");
  const versionFile = join(dir, "send-zerocopy.version");
  if (existsSync(bin) && existsSync(versionFile))
    return { path: bin, version: readFileSync(versionFile, "utf8").trim() };
  for (const tool of ["gcc", "make", "apt-get", "dpkg-source"]) {
    if (!which(tool))
      return { skip: `${tool} is not installed (needed to fetch and build liburing's examples/send-zerocopy.c)` };
  }
  const deadline = Date.now() + budgetMs;
  let line: string;
  try {
    line = archiveLine(LIBURING_SUITE).replace(/^deb /, "deb-src ");
  } catch (e) {
    return { skip: (e as Error).message };
  }
  const apt = privateApt(defaultCacheDir(), `${LIBURING_SUITE}-src`, line);
  const updated = await aptUpdate(apt, deadline);
  if (!updated.ok && !hasSourceLists(apt.dir))
    return { skip: `cannot fetch the ${LIBURING_SUITE} source lists: ${updated.detail.split("\n").pop()}` };
  const work = mkdtempSync(join(tmpdir(), "bun-uring-liburing-"));
  try {
    const got = await run(["apt-get", ...apt.options, "-q", "source", "liburing"], { cwd: work, deadline });
    if (got.code !== 0)
      return {
        skip: `apt-get source liburing (${LIBURING_SUITE}) failed: ${(got.stderr || got.stdout).trim().split("\n").pop()}`,
      };
    const tree = readdirSync(work).find((n) => /^liburing-\d/.test(n));
    if (!tree || !existsSync(join(work, tree, "examples", "send-zerocopy.c")))
      return { skip: `the ${LIBURING_SUITE} liburing source has no examples/send-zerocopy.c` };
    const src = join(work, tree);
    const version = tree.replace(/^liburing-/, "");
    // configure writes the headers the library needs (compat.h, io_uring_version.h); only the
    // static library is built, then the one example against it.
    await runChecked(["./configure", "--cc=gcc"], { cwd: src, deadline });
    await runChecked(["make", "-j2", "-C", "src", "liburing.a"], { cwd: src, deadline });
    const out = join(work, "send-zerocopy");
    await runChecked(
      [
        "gcc",
        "-O2",
        "-D_GNU_SOURCE",
        "-Isrc/include",
        "examples/send-zerocopy.c",
        "-o",
        out,
        "src/liburing.a",
        "-lpthread",
      ],
      { cwd: src, deadline },
    );
    // Copied next to its final name, then renamed: a concurrent run never sees half a binary.
    copyFileSync(out, `${bin}.tmp`);
    chmodSync(`${bin}.tmp`, 0o755);
    writeFileSync(versionFile, version + "\n");
    renameSync(`${bin}.tmp`, bin);
    return { path: bin, version };
  } catch (e) {
    return { skip: `building liburing's send-zerocopy failed: ${(e as Error).message.split("\n")[0]}` };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function hasSourceLists(aptDir: string): boolean {
  const lists = join(aptDir, "state", "lists");
  return existsSync(lists) && readdirSync(lists).some((n) => n.includes("_Sources"));
}
