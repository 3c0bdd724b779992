// Getting a Debian kernel (vmlinuz + its modules tree) for a suite into the cache.
//
// linux-image-amd64 is a metapackage; its versioned dependency is the real image package, signed
// (linux-image-R-amd64) or unsigned (linux-image-R-amd64-unsigned). Recent kernels split that
// package further into linux-binary-R (vmlinuz) and linux-modules-R, so the image package's own
// dependencies on linux-{binary,modules}-R are fetched with it.
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ensureDir, pruneRelease } from "./cache.ts";
import { aptDownload, aptUpdate, archiveLine, hasLists, privateApt, showPackage, type PrivateApt } from "./apt.ts";
import { runChecked } from "./proc.ts";

export type KernelChoice = "newest" | "stable" | "oldstable";

export const SUITE_OF: Record<KernelChoice, string> = {
  newest: "unstable",
  stable: "stable",
  oldstable: "oldstable",
};

export interface KernelFiles {
  suite: string;
  /** Version of linux-image-amd64 this kernel came from. */
  version: string;
  /** The kernel release, i.e. what `uname -r` prints inside. */
  release: string;
  packages: string[];
  vmlinuz: string;
  /** The lib/modules/<release> directory of the extracted packages. */
  modulesDir: string;
}

interface SuiteRecord {
  version: string;
  release: string;
  packages: string[];
}

type Log = (line: string) => void;

export interface FetchOptions {
  cacheDir: string;
  offline: boolean;
  deadline?: number;
  log: Log;
}

/** Returns the suite's current kernel, downloading it only when the cached one is out of date. */
export async function fetchKernel(choice: KernelChoice, opts: FetchOptions): Promise<KernelFiles> {
  const suite = SUITE_OF[choice];
  const cached = readSuiteRecord(opts.cacheDir, suite);
  if (opts.offline) return offlineKernel(opts.cacheDir, suite, cached, "--offline given");

  const apt = privateApt(opts.cacheDir, suite, archiveLine(suite));
  opts.log(`apt-get update (private lists for suite ${suite} in ${apt.dir})`);
  const update = await aptUpdate(apt, opts.deadline);
  if (!update.ok) {
    const reason = `apt-get update failed (${lastLine(update.detail)})`;
    // Without fresh lists, the kernel we already have is as current as we can know.
    if (cached && kernelReady(opts.cacheDir, cached.release)) {
      opts.log(`${reason}; using the cached kernel ${cached.release} (${suite} ${cached.version})`);
      return kernelFiles(opts.cacheDir, suite, cached);
    }
    if (!hasLists(apt)) return offlineKernel(opts.cacheDir, suite, cached, reason);
    opts.log(`${reason}; resolving from the package lists of an earlier update`);
  }

  const resolved = await resolveImage(apt, opts.deadline);
  if (cached && cached.version === resolved.version && kernelReady(opts.cacheDir, cached.release)) {
    opts.log(`kernel ${cached.release} (${suite} ${cached.version}) is cached`);
    return kernelFiles(opts.cacheDir, suite, cached);
  }
  opts.log(`downloading ${resolved.packages.join(" ")} (${suite} ${resolved.version})`);
  await downloadAndExtract(apt, opts.cacheDir, resolved, opts.deadline);
  writeSuiteRecord(opts.cacheDir, suite, resolved);
  if (cached && cached.release !== resolved.release && !releaseInUse(opts.cacheDir, cached.release)) {
    opts.log(`removing kernel ${cached.release} from the cache: no suite uses it now`);
    pruneRelease(opts.cacheDir, cached.release);
  }
  return kernelFiles(opts.cacheDir, suite, resolved);
}

function offlineKernel(cacheDir: string, suite: string, cached: SuiteRecord | undefined, why: string): KernelFiles {
  if (!cached || !kernelReady(cacheDir, cached.release)) {
    throw new Error(`${why}, and no kernel for suite ${suite} is cached in ${cacheDir}`);
  }
  return kernelFiles(cacheDir, suite, cached);
}

/** linux-image-amd64 → the real image package and the split packages it pulls in. */
async function resolveImage(apt: PrivateApt, deadline?: number): Promise<SuiteRecord> {
  const meta = await showPackage(apt, "linux-image-amd64", deadline);
  if (!meta) throw new Error(`suite ${apt.suite} has no linux-image-amd64`);
  const imageNames = meta.depends
    .filter((d) => /^linux-image-\d/.test(d))
    .flatMap((d) => (d.endsWith("-unsigned") ? [d] : [d, `${d}-unsigned`]));
  let image;
  for (const name of imageNames) {
    image = await showPackage(apt, name, deadline);
    if (image) break;
  }
  if (!image) throw new Error(`linux-image-amd64 ${meta.version} depends on none of: ${imageNames.join(", ")}`);
  const release = image.package.replace(/^linux-image-/, "").replace(/-unsigned$/, "");
  const parts = image.depends.filter((d) => d === `linux-binary-${release}` || d === `linux-modules-${release}`);
  return { version: meta.version, release, packages: [image.package, ...parts] };
}

async function downloadAndExtract(apt: PrivateApt, cacheDir: string, record: SuiteRecord, deadline?: number) {
  const debDir = join(cacheDir, "debs", apt.suite);
  const debs = await aptDownload(apt, record.packages, debDir, deadline);
  const finalRoot = kernelRoot(cacheDir, record.release);
  const tmpRoot = `${finalRoot}.${process.pid}.partial`;
  rmSync(tmpRoot, { recursive: true, force: true });
  ensureDir(tmpRoot);
  for (const deb of debs) await runChecked(["dpkg-deb", "-x", deb, tmpRoot], { deadline });
  rmSync(finalRoot, { recursive: true, force: true });
  renameSync(tmpRoot, finalRoot);
  // The extracted tree is what later runs use; the .debs (100+ MB) would only double the cache.
  rmSync(debDir, { recursive: true, force: true });
  if (!findKernelPaths(finalRoot, record.release)) {
    throw new Error(`packages ${record.packages.join(", ")} hold no vmlinuz/modules for ${record.release}`);
  }
}

function kernelRoot(cacheDir: string, release: string): string {
  return join(cacheDir, "kernels", release);
}

function kernelReady(cacheDir: string, release: string): boolean {
  return findKernelPaths(kernelRoot(cacheDir, release), release) !== undefined;
}

/** Old packages use /boot/vmlinuz-R and /lib/modules/R; new ones /usr/lib/modules/R/vmlinuz. */
function findKernelPaths(root: string, release: string): { vmlinuz: string; modulesDir: string } | undefined {
  const modulesDir = [join(root, "usr/lib/modules", release), join(root, "lib/modules", release)].find(existsSync);
  if (!modulesDir) return undefined;
  const vmlinuz = [join(root, "boot", `vmlinuz-${release}`), join(modulesDir, "vmlinuz")].find(existsSync);
  return vmlinuz ? { vmlinuz, modulesDir } : undefined;
}

function kernelFiles(cacheDir: string, suite: string, record: SuiteRecord): KernelFiles {
  const paths = findKernelPaths(kernelRoot(cacheDir, record.release), record.release);
  if (!paths)
    throw new Error(`cached kernel ${record.release} is incomplete; remove ${kernelRoot(cacheDir, record.release)}`);
  return { suite, ...record, ...paths };
}

/** Whether any suite's record still points at this release (stable and oldstable may share one). */
function releaseInUse(cacheDir: string, release: string): boolean {
  const dir = join(cacheDir, "kernels");
  return readdirSync(dir)
    .filter((name) => name.endsWith(".json"))
    .some((name) => readSuiteRecord(cacheDir, name.slice(0, -".json".length))?.release === release);
}

function suiteRecordPath(cacheDir: string, suite: string): string {
  return join(ensureDir(join(cacheDir, "kernels")), `${suite}.json`);
}

function readSuiteRecord(cacheDir: string, suite: string): SuiteRecord | undefined {
  const path = suiteRecordPath(cacheDir, suite);
  return existsSync(path) ? (JSON.parse(readFileSync(path, "utf8")) as SuiteRecord) : undefined;
}

function writeSuiteRecord(cacheDir: string, suite: string, record: SuiteRecord) {
  writeFileSync(suiteRecordPath(cacheDir, suite), JSON.stringify(record, null, 2) + "\n");
}

/** apt's most telling line: the first error or failed fetch, else its last word. */
function lastLine(text: string): string {
  const lines = text.split("\n").filter(Boolean);
  return lines.find((l) => /^(E:|Err:|W: Failed to fetch)/.test(l)) ?? lines.pop() ?? "no output";
}
