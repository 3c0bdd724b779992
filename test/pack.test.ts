// The package as a user gets it: `npm pack` carries only what package.json's `files` names, and
// the tarball, installed into a fresh app with bun install, imports and runs a round trip.
import { afterAll, expect } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { testIf } from "./helpers.ts";

const ROOT = join(import.meta.dir, "..");
const NPM = Bun.which("npm");
const SKIP = NPM ? null : "npm is not installed (npm pack makes the tarball)";
const work = mkdtempSync(join(tmpdir(), "bun-uring-pack-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Packing and installing take a few seconds; the bound is far above that. */
const TIMEOUT_MS = 60_000;

async function run(argv: string[], cwd: string): Promise<{ code: number; out: string; err: string }> {
  const p = Bun.spawn(argv, { cwd, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const killer = setTimeout(() => p.kill("SIGKILL"), TIMEOUT_MS);
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  clearTimeout(killer);
  return { code, out, err };
}

const APP = `import { openRing } from "bun-uring";
import { prepNop } from "bun-uring/ring";
import { tcpConnect } from "bun-uring/sync";
import { IORING_OP_NOP } from "bun-uring/abi";
import { SimulatedZcrx } from "bun-uring/testing";
await using ring = openRing();
const server = ring.listen({ host: "127.0.0.1", port: 0 });
const client = await ring.connect({ host: "127.0.0.1", port: server.port });
const peer = await server.accept();
const msg = new TextEncoder().encode("ping through the packed bun-uring");
await client.send(msg).released;
let got = "";
for await (const chunk of peer.recv()) {
  got += new TextDecoder().decode(chunk);
  if (got.length >= msg.length) break;
}
await client.close();
await peer.close();
await server.close();
console.log(got);
console.log([prepNop, tcpConnect, SimulatedZcrx].map((f) => typeof f).join(" "), IORING_OP_NOP);
`;

testIf(
  SKIP,
  "npm pack carries src/, ffi/ and the README only; the tarball installs into a new app and does a round trip; every entry point resolves",
  async () => {
    const pack = await run([NPM!, "pack", "--json", "--pack-destination", work], ROOT);
    expect(pack.code).toBe(0);
    const [info] = JSON.parse(pack.out) as Array<{ filename: string; files: Array<{ path: string }> }>;
    const paths = info!.files.map((f) => f.path);
    expect(paths).toContain("src/index.ts");
    expect(paths).toContain("ffi/index.ts");
    expect(paths).toContain("package.json");
    expect(paths.filter((p) => !/^(src|ffi)\//.test(p) && p !== "README.md" && p !== "package.json")).toEqual([]);

    const app = join(work, "app");
    await Bun.write(
      join(app, "package.json"),
      JSON.stringify({
        name: "pack-test-app",
        private: true,
        type: "module",
        dependencies: { "bun-uring": `file:${join(work, info!.filename)}` },
      }),
    );
    writeFileSync(join(app, "app.ts"), APP);
    const install = await run([process.execPath, "install"], app);
    expect(install.code).toBe(0);
    const r = await run([process.execPath, "app.ts"], app);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    // Every entry point in package.json's exports resolves from the installed package.
    expect(r.out.trim()).toBe("ping through the packed bun-uring\nfunction function function 0");
  },
  TIMEOUT_MS,
);
