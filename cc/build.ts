/**
 * Builds the congestion-control modules into cc/dist/: the AssemblyScript ones with the pinned
 * `npm:assemblyscript` compiler, the C one with clang for wasm32 (skipped with a notice when
 * clang/wasm-ld are missing). A module is rebuilt only when its output is older than one of its
 * sources. Run as `deno task build:cc`; tests and benches call `ensureBuilt()`.
 *
 * @module
 */

/** Exact compiler version (see cc/README.md; deno.lock pins its integrity). */
export const ASC_SPEC = "npm:assemblyscript@0.28.20/asc";

const CC_DIR = new URL("./", import.meta.url);
/** Folder holding the built modules. */
export const DIST_DIR: URL = new URL("./dist/", CC_DIR);

/** AssemblyScript modules: output name -> entry source (relative to cc/src/). */
export const AS_MODULES: readonly string[] = ["reno", "cubic", "dctcp", "bbr"];
/** C modules (relative to cc/c/). */
export const C_MODULES: readonly string[] = ["aimd"];

const ASC_FLAGS = [
  "-O3",
  "--noAssert",
  "--runtime",
  "stub",
  "--initialMemory",
  "1",
  "--maximumMemory",
  "16",
  "--use",
  "abort=",
];

/** Thrown when a compiler fails; the message carries its output. */
export class CcBuildError extends Error {
  /** Creates the error. */
  constructor(module: string, output: string) {
    super(
      `building cc module "${module}" failed; fix the source and rerun deno task build:cc\n${output}`,
    );
    this.name = "CcBuildError";
  }
}

function mtime(url: URL): number {
  try {
    return Deno.statSync(url).mtime?.getTime() ?? 0;
  } catch {
    return -1;
  }
}

function stale(out: URL, sources: URL[]): boolean {
  const t = mtime(out);
  if (t < 0) return true;
  return sources.some((s) => mtime(s) > t);
}

async function run(module: string, cmd: string, args: string[]): Promise<void> {
  const r = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  if (!r.success) {
    const dec = new TextDecoder();
    throw new CcBuildError(module, dec.decode(r.stdout) + dec.decode(r.stderr));
  }
}

/** True when clang and wasm-ld are on PATH. */
export async function haveClang(): Promise<boolean> {
  for (const tool of ["clang", "wasm-ld"]) {
    try {
      const r = await new Deno.Command(tool, {
        args: ["--version"],
        stdout: "null",
        stderr: "null",
      })
        .output();
      if (!r.success) return false;
    } catch {
      return false;
    }
  }
  return true;
}

let building: Promise<string[]> | null = null;

/**
 * Builds every stale module. Callers in one isolate share one build; across isolates and
 * processes (e.g. `deno test --parallel`) a lock file in cc/dist/ serializes builds, and
 * outputs are written to a uniquely named temporary file and renamed, so nobody reads a
 * half-written module. Returns the names it built.
 */
export function ensureBuilt(): Promise<string[]> {
  building ??= withLock(buildAll).finally(() => {
    building = null;
  });
  return building;
}

const LOCK_STALE_MS = 180_000;

async function withLock<T>(fn: () => Promise<T>): Promise<T> {
  Deno.mkdirSync(DIST_DIR, { recursive: true });
  const lock = new URL(".build.lock", DIST_DIR);
  for (;;) {
    try {
      Deno.writeFileSync(lock, new TextEncoder().encode(String(Deno.pid)), { createNew: true });
      break;
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
      const age = Date.now() - mtime(lock);
      if (mtime(lock) > 0 && age > LOCK_STALE_MS) {
        // A builder died holding the lock.
        try {
          Deno.removeSync(lock);
        } catch { /* someone else removed it */ }
        continue;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  try {
    return await fn();
  } finally {
    try {
      Deno.removeSync(lock);
    } catch { /* already gone */ }
  }
}

async function buildAll(): Promise<string[]> {
  Deno.mkdirSync(DIST_DIR, { recursive: true });
  const built: string[] = [];
  // Every AS module may import the shared files, so any source change rebuilds them all.
  const srcDir = new URL("./src/", CC_DIR);
  const sources = [...Deno.readDirSync(srcDir)]
    .filter((e) => e.isFile && e.name.endsWith(".ts"))
    .map((e) => new URL(e.name, srcDir));
  for (const name of AS_MODULES) {
    const src = new URL(`./src/${name}.ts`, CC_DIR);
    const out = new URL(`${name}.wasm`, DIST_DIR);
    if (!stale(out, [...sources, new URL(import.meta.url)])) continue;
    const tmp = new URL(`${name}.${crypto.randomUUID()}.tmp.wasm`, DIST_DIR);
    await run(name, Deno.execPath(), [
      "run",
      "-A",
      ASC_SPEC,
      src.pathname,
      "-o",
      tmp.pathname,
      ...ASC_FLAGS,
    ]);
    Deno.renameSync(tmp, out);
    built.push(name);
  }
  const header = new URL("./c/cc_abi.h", CC_DIR);
  let clang: boolean | null = null;
  for (const name of C_MODULES) {
    const src = new URL(`./c/${name}.c`, CC_DIR);
    const out = new URL(`${name}.wasm`, DIST_DIR);
    if (!stale(out, [src, header, new URL(import.meta.url)])) continue;
    clang ??= await haveClang();
    if (!clang) {
      console.error(
        `cc/build: clang/wasm-ld missing, ${name}.wasm not built (apt-get install clang lld)`,
      );
      continue;
    }
    const tmp = new URL(`${name}.${crypto.randomUUID()}.tmp.wasm`, DIST_DIR);
    await run(name, "clang", [
      "--target=wasm32",
      "-O2",
      "-nostdlib",
      "-ffreestanding",
      "-fno-builtin",
      "-Wall",
      "-Werror",
      "-Wl,--no-entry",
      "-Wl,--export-dynamic",
      "-Wl,--initial-memory=65536",
      "-Wl,--max-memory=131072",
      "-Wl,-z,stack-size=16384",
      "-o",
      tmp.pathname,
      src.pathname,
    ]);
    Deno.renameSync(tmp, out);
    built.push(name);
  }
  return built;
}

/** URL of a built module. */
export function modulePath(name: string): URL {
  return new URL(`${name}.wasm`, DIST_DIR);
}

if (import.meta.main) {
  const built = await ensureBuilt();
  console.log(built.length > 0 ? `built: ${built.join(", ")}` : "cc/dist is up to date");
}
