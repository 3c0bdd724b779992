#!/usr/bin/env node
// Installs what `npm test` and `npm start` need on a fresh Debian machine that has only node and
// npm: the project's dev dependencies (Bun itself comes from the `bun` package) and the system's
// liburing2 (apt-get, after an `apt-get update` when the first try fails). Runs under node so it
// works before Bun exists. Prints what it does; silent when everything is there.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

function say(msg) {
  console.error(`setup: ${msg}`);
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: "inherit", cwd: root, ...opts });
  return r.status === 0;
}

function hasBun() {
  const bin = join(root, "node_modules", ".bin", "bun");
  if (!existsSync(bin)) return false;
  try {
    execFileSync(bin, ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

function hasDevTools() {
  return ["tsc", "prettier"].every((bin) => existsSync(join(root, "node_modules", ".bin", bin)));
}

if (!hasBun() || !hasDevTools()) {
  say("installing dev dependencies with npm (bun, typescript, bun-types, prettier)");
  const lock = existsSync(join(root, "package-lock.json"));
  if (!run("npm", [lock ? "ci" : "install", "--no-audit", "--no-fund"])) {
    say("npm install failed");
    process.exit(1);
  }
  if (!hasBun()) {
    // npm may skip the bun package's postinstall; its platform binary is an optional dependency
    // that the postinstall links into place, so run it by hand.
    say("bun's postinstall did not run; running it");
    run("node", ["install.js"], { cwd: join(root, "node_modules", "bun") });
  }
  if (!hasBun()) {
    say("bun is still not runnable from node_modules/.bin/bun");
    process.exit(1);
  }
}

function hasLiburing() {
  if (process.env.BUN_URING_LIBURING && existsSync(process.env.BUN_URING_LIBURING)) return true;
  for (const dir of ["/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib", "/lib/x86_64-linux-gnu"]) {
    try {
      if (readdirSync(dir).includes("liburing.so.2")) return true;
    } catch {}
  }
  return false;
}

if (!hasLiburing()) {
  say("liburing.so.2 missing: apt-get install -y liburing2");
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  // A fresh cloud machine may still be running its own package updates: wait for the dpkg lock
  // instead of failing at once.
  const lock = ["-o", "DPkg::Lock::Timeout=300"];
  if (!run("apt-get", [...lock, "install", "-y", "-q", "liburing2"], { env })) {
    say("retrying after apt-get update");
    if (
      !run("apt-get", [...lock, "update", "-q"], { env }) ||
      !run("apt-get", [...lock, "install", "-y", "-q", "liburing2"], { env })
    ) {
      say("could not install liburing2; install it (apt-get install liburing2) or set BUN_URING_LIBURING");
      process.exit(1);
    }
  }
}
