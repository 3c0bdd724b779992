// The guest's initramfs, in two cpio archives that the kernel unpacks one after the other:
//  - base: busybox, bun and its shared libraries, kernel modules. Invariant for a given kernel and
//    host toolset, so it is built once and cached under a key of those inputs.
//  - project: /init, the env file, liburing and the project's sources. Rebuilt every run (small).
import { existsSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { ensureDir } from "./cache.ts";
import { CpioWriter } from "./cpio.ts";
import { GUEST_ENV_FILE, GUEST_LIBURING, GUEST_MODULE_LIST, GUEST_PROJECT, INIT_SCRIPT, envScript } from "./init.ts";
import type { KernelFiles } from "./kernel.ts";
import { modulesDep, selectModules } from "./modules.ts";
import { run, runChecked } from "./proc.ts";

/** Bumped when the base archive's layout changes, so stale cached images are not reused. */
const BASE_LAYOUT = 3;

/**
 * Host programs copied in (with their libraries) when the host has them, because busybox's
 * applets of the same names lack what tests use: `ip netns`, setpriv --bounding-set, tc qdiscs.
 * dash becomes /bin/sh: Debian's static busybox shell runs its own applets before anything on
 * PATH, so `sh -c "ip netns add x"` from a test would get busybox's ip.
 */
export const HOST_TOOLS = ["dash", "ip", "tc", "ethtool", "setpriv", "unshare", "nsenter"];

/**
 * Uncompressed archives boot faster under TCG: QEMU reads the file at host speed, while gunzip
 * in the guest runs on emulated instructions. Measured with kernel 7.2.13 on a 2-core host,
 * three runs each, time to the boot marker: uncompressed (113 MB) 5.9-6.5 s, gzip -6 (55 MB)
 * 6.7-7.0 s. Kept as a switch for hosts where reading the larger file is the slow part.
 */
export const COMPRESS = false;

/** Directories of the project the tests need; node_modules and .git are never included. */
export const PROJECT_ENTRIES = [
  "package.json",
  "bunfig.toml",
  "tsconfig.json",
  "src",
  "ffi",
  "test",
  "scripts",
  "bench",
];
const SKIP_DIRS = new Set(["node_modules", ".git"]);

export interface BaseInputs {
  bun: string;
  busybox: string;
  kernel: KernelFiles;
  modules: string[];
}

type Log = (line: string) => void;

/** Shared libraries `ldd` lists for a binary, plus its dynamic loader (the line without "=>"). */
export async function sharedLibraries(binary: string): Promise<string[]> {
  const result = await run(["ldd", binary]);
  // A static program has nothing to bring along; ldd says so and exits 1.
  if (/not a dynamic executable/.test(result.stdout + result.stderr)) return [];
  if (result.code !== 0) throw new Error(`ldd ${binary} exited with ${result.code}: ${result.stderr.trim()}`);
  const out = result.stdout;
  const libs: string[] = [];
  for (const line of out.split("\n")) {
    const viaArrow = /=>\s+(\/\S+)/.exec(line)?.[1];
    const direct = /^\s*(\/\S+)\s+\(/.exec(line)?.[1];
    const path = viaArrow ?? direct;
    if (path) libs.push(path);
  }
  return libs;
}

/** Host paths of HOST_TOOLS found on PATH. */
function hostTools(): string[] {
  return HOST_TOOLS.map((name) => Bun.which(name)).filter((p): p is string => p !== null);
}

/** The union of every binary's libraries, in first-seen order. */
async function librariesOf(binaries: string[]): Promise<string[]> {
  const all = new Set<string>();
  for (const binary of binaries) for (const lib of await sharedLibraries(binary)) all.add(lib);
  return [...all];
}

/** A host program at its PATH location and at its real location (tests may name either). */
function addHostProgram(cpio: CpioWriter, path: string): void {
  const data = readFileSync(realpathSync(path));
  for (const at of new Set([guestPath(path), guestPath(realpathSync(path))])) cpio.file(at, data, 0o755);
}

/** Where a host file lands in the merged-/usr guest: its directory resolved, its own name kept. */
export function guestPath(hostPath: string): string {
  const dir = realpathSync(dirname(hostPath));
  return join(dir.startsWith("/usr/") ? dir : join("/usr", dir), basename(hostPath));
}

async function sha256File(path: string): Promise<string> {
  const hasher = new Bun.CryptoHasher("sha256");
  hasher.update(await Bun.file(path).arrayBuffer());
  return hasher.digest("hex");
}

/** Cache key: kernel release and version, bun's hash, busybox's hash, the libraries' identity, the modules. */
async function baseKey(inputs: BaseInputs, libs: string[]): Promise<string> {
  const hasher = new Bun.CryptoHasher("sha256");
  const libIds = libs.map((lib) => {
    const st = statSync(realpathSync(lib));
    return `${lib}:${st.size}:${st.mtimeMs}`;
  });
  hasher.update(
    JSON.stringify({
      layout: BASE_LAYOUT,
      compress: COMPRESS,
      release: inputs.kernel.release,
      // A rebuilt kernel can keep its release name; its modules still have to match it.
      version: inputs.kernel.version,
      bun: await sha256File(inputs.bun),
      busybox: await sha256File(inputs.busybox),
      libs: libIds,
      modules: [...inputs.modules].sort(),
    }),
  );
  return hasher.digest("hex").slice(0, 16);
}

/** The cached base archive for these inputs, building it (and dropping older ones) when needed. */
export async function baseArchive(cacheDir: string, inputs: BaseInputs, log: Log): Promise<string> {
  const tools = hostTools();
  const libs = await librariesOf([inputs.bun, ...tools]);
  const dir = ensureDir(join(cacheDir, "initramfs"));
  const key = await baseKey(inputs, [...tools, ...libs]);
  const prefix = `base-${inputs.kernel.release}-`;
  const path = join(dir, `${prefix}${key}.cpio${COMPRESS ? ".gz" : ""}`);
  if (existsSync(path)) return path;
  const toolNames = tools.map((t) => basename(t)).join(", ");
  log(
    `building initramfs base for ${inputs.kernel.release} (bun, busybox, ${toolNames}, ${libs.length} libraries, modules)`,
  );
  const cpio = new CpioWriter();
  layoutSkeleton(cpio);
  cpio.file("usr/bin/bun", new Uint8Array(await Bun.file(inputs.bun).arrayBuffer()), 0o755);
  for (const tool of tools) addHostProgram(cpio, tool);
  if (tools.some((t) => basename(t) === "dash")) cpio.symlink("usr/bin/sh", "dash");
  await addBusybox(cpio, inputs.busybox);
  for (const lib of libs) cpio.file(guestPath(lib), readFileSync(realpathSync(lib)), 0o755);
  await addModules(cpio, inputs.kernel, inputs.modules, log);
  for (const old of readdirSync(dir)) if (old.startsWith(prefix)) rmSync(join(dir, old), { force: true });
  await writeArchive(path, cpio.finish());
  return path;
}

/** Merged-/usr layout like Debian's, device nodes for the first console, and a few /etc files. */
function layoutSkeleton(cpio: CpioWriter): void {
  for (const d of ["usr/bin", "usr/sbin", "usr/lib", "usr/lib64", "usr/local/bin"]) cpio.dir(d);
  for (const d of ["proc", "sys", "dev", "run", "mnt", "var/tmp", "etc/bun-uring"]) cpio.dir(d);
  cpio.dir("tmp", 0o1777);
  cpio.dir("root", 0o700);
  cpio.symlink("bin", "usr/bin");
  cpio.symlink("sbin", "usr/sbin");
  cpio.symlink("lib", "usr/lib");
  cpio.symlink("lib64", "usr/lib64");
  // The kernel opens /dev/console for PID 1 before /init can mount devtmpfs.
  cpio.charDevice("dev/console", 5, 1);
  cpio.charDevice("dev/null", 1, 3, 0o666);
  cpio.file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n");
  cpio.file("etc/group", "root:x:0:\n");
  cpio.file("etc/hosts", "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n");
  cpio.file("etc/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files dns\n");
  cpio.file("etc/resolv.conf", "");
}

/** busybox plus a symlink per applet, mapped into merged /usr, where no real program is already. */
async function addBusybox(cpio: CpioWriter, busybox: string): Promise<void> {
  cpio.file("usr/bin/busybox", readFileSync(busybox), 0o755);
  const applets = (await runChecked([busybox, "--list-full"])).split("\n").filter(Boolean);
  for (const applet of applets) {
    const path = applet.replace(/^(s?bin)\//, "usr/$1/");
    if (path === "usr/bin/busybox" || cpio.has(path)) continue;
    cpio.symlink(path, "/usr/bin/busybox");
  }
}

async function addModules(cpio: CpioWriter, kernel: KernelFiles, wanted: string[], log: Log): Promise<void> {
  const selection = await selectModules(kernel.modulesDir, wanted);
  if (selection.missing.length) {
    log(`modules not found as files (built into ${kernel.release}, or not built): ${selection.missing.join(", ")}`);
  }
  const root = `usr/lib/modules/${kernel.release}`;
  for (const mod of selection.modules) cpio.file(`${root}/${mod.path}`, mod.data);
  cpio.file(`${root}/modules.dep`, modulesDep(selection));
  cpio.file(GUEST_MODULE_LIST, selection.modules.map((m) => m.path).join("\n") + "\n");
}

export interface ProjectInputs {
  projectDir: string;
  liburing: string;
  env: Record<string, string>;
  files: string[];
}

/** /init, the env file, liburing and the project tree, as the second archive. */
export function projectArchive(inputs: ProjectInputs): Uint8Array[] {
  const cpio = new CpioWriter();
  cpio.file("init", INIT_SCRIPT, 0o755);
  cpio.file(GUEST_ENV_FILE, envScript(inputs.env, inputs.files));
  cpio.file(GUEST_LIBURING, readFileSync(realpathSync(inputs.liburing)), 0o755);
  for (const entry of PROJECT_ENTRIES) addTree(cpio, inputs.projectDir, entry);
  return cpio.finish();
}

function addTree(cpio: CpioWriter, root: string, rel: string): void {
  const host = join(root, rel);
  const guest = `${GUEST_PROJECT}/${rel}`;
  try {
    const st = statSync(host);
    if (st.isDirectory()) {
      const names = readdirSync(host).sort();
      cpio.dir(guest);
      for (const name of names) if (!SKIP_DIRS.has(name)) addTree(cpio, root, join(rel, name));
    } else if (st.isFile()) {
      cpio.file(guest, readFileSync(host), st.mode & 0o777);
    }
  } catch (err) {
    // Absent, or gone between listing and reading (an editor's temporary file): nothing to copy.
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
}

/** Writes cpio chunks to a file, gzipped when COMPRESS is on. */
async function writeArchive(path: string, chunks: Uint8Array[]): Promise<void> {
  const tmp = `${path}.${process.pid}.partial`;
  const body = Buffer.concat(chunks);
  await Bun.write(tmp, COMPRESS ? Bun.gzipSync(body, { level: 6 }) : body);
  // Renamed into place only when complete, so an interrupted build is never taken for a cached one.
  renameSync(tmp, path);
}

/** base + project in one file (QEMU takes a single -initrd); the kernel unpacks both in order. */
export async function combinedInitrd(base: string, project: Uint8Array[], out: string): Promise<string> {
  const tail = Buffer.concat(project);
  const projectBytes = COMPRESS ? Bun.gzipSync(tail) : tail;
  const baseBytes = new Uint8Array(await Bun.file(base).arrayBuffer());
  const writer = Bun.file(out).writer();
  writer.write(baseBytes);
  writer.write(projectBytes);
  await writer.end();
  return out;
}
