/**
 * `deno task image`: builds the NSM image, one executable that runs `nsm`, `ctl`, `nkcat` and
 * `nkperf` as subcommands (nsm/image_main.ts), with the WebAssembly congestion-control modules
 * of cc/dist/ inside, so `--cc cubic|dctcp|bbr` and `ctl cc set` work without the source tree.
 *
 * ```sh
 * deno task image [--output out/nsm-image] [--target TRIPLE] [--kind auto|compile|sfx]
 * ```
 *
 * Two kinds of image, same file name and same subcommands:
 * - `compile`: `deno compile` (`--include cc/dist/`). It needs Deno's `denort` runtime of the
 *   same version, which it downloads once from dl.deno.land into $DENO_DIR (or takes from
 *   `DENORT_BIN`). The npm registry has no denort: the npm `deno` package ships the full CLI,
 *   which as `DENORT_BIN` yields an executable that ignores the program and starts the REPL.
 * - `sfx` (nsm/image_sfx.ts): a sh self-extractor carrying the pinned deno binary and the
 *   sources of image_main.ts's module graph; it unpacks once into a cache directory and runs
 *   them with `deno run --cached-only` (no network at run time).
 *
 * `--kind auto` (the default) tries `compile` and falls back to `sfx` when denort cannot be had
 * (download failed, or `DENORT_BIN` is the full deno CLI), saying why.
 *
 * @module
 */

import { ensureBuilt } from "../cc/build.ts";
import { BUNDLED_CC } from "./cc_modules.ts";
import { buildSfxImage } from "./image_sfx.ts";
import { NSM_V8_FLAGS } from "./heap.ts";

/** Which image to build. */
export type ImageKind = "auto" | "compile" | "sfx";

/** What the builder runs `deno compile` with. */
export interface ImageBuildOptions {
  /** Output path of the executable. */
  readonly output: string;
  /** `--target` triple, or undefined for this machine's. */
  readonly target: string | undefined;
  /** Which image to build (`auto`: compile, else the self-extractor). */
  readonly kind: ImageKind;
}

/** Thrown for a bad builder argument. */
export class ImageArgsError extends Error {
  /** `what`: the problem. */
  constructor(what: string) {
    super(
      `${what}; usage: deno task image [--output FILE] [--target TRIPLE] ` +
        `[--kind auto|compile|sfx]`,
    );
    this.name = "ImageArgsError";
  }
}

/** Parses the builder's flags. */
export function parseImageArgs(argv: readonly string[]): ImageBuildOptions {
  let output = "out/nsm-image";
  let target: string | undefined;
  let kind: ImageKind = "auto";
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = argv[i + 1];
    if ((a === "--output" || a === "-o") && v !== undefined) {
      output = v;
      i++;
    } else if (a === "--target" && v !== undefined) {
      target = v;
      i++;
    } else if (a === "--kind" && (v === "auto" || v === "compile" || v === "sfx")) {
      kind = v;
      i++;
    } else {
      throw new ImageArgsError(`unknown argument ${a}`);
    }
  }
  return { output, target, kind };
}

/**
 * Permissions and unstable flags the image runs with, in both kinds. The NSM needs net
 * (metrics, control socket), read/write (/dev/shm devices, the control socket, cc modules),
 * ffi (AF_XDP, bpf(2), mmap), env (NSM_CTL, XDG_RUNTIME_DIR) and sys; no subprocesses.
 * --unstable-net: UDP of --stack kernel (Deno.listenDatagram). `NSM_V8_FLAGS`: the young
 * generation size (nsm/heap.ts).
 */
export const IMAGE_RUN_FLAGS: readonly string[] = [
  "--unstable-net",
  NSM_V8_FLAGS,
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-ffi",
  "--allow-env",
  "--allow-sys",
];

/**
 * Modules started as workers (`new Worker(new URL(...))`): no static import reaches them, so
 * the image lists them itself. Without them an image runs, but its NSM kicks AF_XDP inline
 * and sleeps through Deno's async I/O (the threads fail to start and are done without).
 */
export const WORKER_MODULES: readonly string[] = ["xdp/kick_worker.ts", "nsm/sleeper_worker.ts"];

/** The `deno compile` arguments for `o` (paths relative to the repository root). */
export function compileArgs(o: ImageBuildOptions, root: URL): string[] {
  const rel = (p: string): string => new URL(p, root).pathname;
  return [
    "compile",
    ...IMAGE_RUN_FLAGS,
    "--include",
    rel("cc/dist/"),
    ...WORKER_MODULES.flatMap((m) => ["--include", rel(m)]),
    "--output",
    o.output,
    ...(o.target !== undefined ? ["--target", o.target] : []),
    rel("nsm/image_main.ts"),
  ];
}

/** Thrown when the sources of the image cannot be listed. */
export class ImageSourcesError extends Error {
  /** `what`: the problem. */
  constructor(what: string) {
    super(`image sources: ${what}; the image carries only local modules (no jsr:, https:, npm:)`);
    this.name = "ImageSourcesError";
  }
}

/**
 * Repository-relative paths of every module `entry` and the `WORKER_MODULES` import
 * (transitively, via `deno info`) plus the built cc modules present in cc/dist/: what the
 * self-extracting image carries.
 */
export async function imageSourceFiles(root: URL, entry = "nsm/image_main.ts"): Promise<string[]> {
  const files = new Set<string>();
  for (const e of [entry, ...WORKER_MODULES]) {
    for (const f of await moduleFiles(root, e)) files.add(f);
  }
  for (const n of BUNDLED_CC) {
    try {
      Deno.statSync(new URL(`cc/dist/${n}.wasm`, root));
      files.add(`cc/dist/${n}.wasm`);
    } catch {
      // reported by buildImage
    }
  }
  return [...files];
}

/** Repository-relative paths of `entry` and every module it imports (`deno info`). */
async function moduleFiles(root: URL, entry: string): Promise<string[]> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "--no-config", "--no-lock", "--no-remote", "--no-npm", entry],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!r.success) throw new ImageSourcesError(new TextDecoder().decode(r.stderr).trim());
  const info = JSON.parse(new TextDecoder().decode(r.stdout)) as {
    modules: { specifier: string; kind?: string; error?: string }[];
  };
  const files: string[] = [];
  for (const m of info.modules) {
    if (m.specifier.startsWith("node:")) continue; // built into deno
    if (m.error !== undefined) throw new ImageSourcesError(m.error);
    if (!m.specifier.startsWith(root.href)) {
      throw new ImageSourcesError(`${m.specifier} is outside ${root.href}`);
    }
    files.push(decodeURIComponent(m.specifier.slice(root.href.length)));
  }
  return files;
}

/** Why `deno compile` cannot run here, or undefined if it may (checked before trying it). */
export async function denortUnusable(): Promise<string | undefined> {
  const bin = Deno.env.get("DENORT_BIN");
  if (bin === undefined || bin === "") return undefined;
  try {
    const r = await new Deno.Command(bin, { args: ["--version"], stdout: "piped", stderr: "null" })
      .output();
    // denort has no CLI; the full deno answers "deno 2.x.y (...)".
    if (r.success && new TextDecoder().decode(r.stdout).startsWith("deno ")) {
      return `DENORT_BIN=${bin} is the full deno CLI, not denort (its image would start the REPL)`;
    }
  } catch (e) {
    return `DENORT_BIN=${bin} cannot be run: ${(e as Error).message}`;
  }
  return undefined;
}

/** Runs `deno compile`; says whether it worked and, if not, whether for want of denort. */
async function compileImage(
  o: ImageBuildOptions,
  root: URL,
): Promise<{ ok: true } | { ok: false; denort: boolean; err: string }> {
  const args = compileArgs(o, root);
  console.log(`image: deno ${args.join(" ")}`);
  const r = await new Deno.Command(Deno.execPath(), {
    args,
    stdout: "inherit",
    stderr: "piped",
  }).output();
  if (r.success) return { ok: true };
  const err = new TextDecoder().decode(r.stderr);
  return {
    ok: false,
    denort: /denort|dl\.deno\.land|dns error|error sending request/.test(err),
    err,
  };
}

/** Builds the image; resolves with the exit status. */
export async function buildImage(argv: readonly string[]): Promise<number> {
  let o: ImageBuildOptions;
  try {
    o = parseImageArgs(argv);
  } catch (e) {
    console.error(`image: ${(e as Error).message}`);
    return 2;
  }
  const root = new URL("../", import.meta.url);
  await ensureBuilt();
  const missing = BUNDLED_CC.filter((n) => {
    try {
      Deno.statSync(new URL(`cc/dist/${n}.wasm`, root));
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length > 0) {
    console.error(`image: not built, not embedded: ${missing.join(", ")} (see deno task build:cc)`);
  }
  const slash = o.output.lastIndexOf("/");
  if (slash > 0) Deno.mkdirSync(o.output.slice(0, slash), { recursive: true });

  let why: string | undefined;
  if (o.kind !== "sfx") {
    why = await denortUnusable();
    if (why === undefined) {
      const r = await compileImage(o, root);
      if (r.ok) {
        console.log(`image: ${o.output} (kind compile: deno compile) (run ${o.output} --help)`);
        return 0;
      }
      if (!r.denort) {
        console.error(r.err);
        return 1;
      }
      why = `deno compile could not download the denort runtime (Deno ${Deno.version.deno}, ` +
        `https://dl.deno.land/release/v${Deno.version.deno}/denort-` +
        `${o.target ?? Deno.build.target}.zip); the npm registry has none`;
    }
    if (o.kind === "compile") {
      console.error(
        `image: ${why}. Fetch the denort zip where the network is reachable, unzip it, and run ` +
          `DENORT_BIN=/path/to/denort deno task image, or build --kind sfx`,
      );
      return 1;
    }
  } else {
    why = "--kind sfx";
  }

  if (o.target !== undefined && o.target !== Deno.build.target) {
    console.error(
      `image: the self-extracting image carries this deno (${Deno.build.target}); it cannot ` +
        `target ${o.target}. Build on a ${o.target} machine or provide DENORT_BIN`,
    );
    return 1;
  }
  const files = await imageSourceFiles(root);
  const r = await buildSfxImage({
    output: o.output,
    denoBin: Deno.execPath(),
    root,
    files,
    entry: "nsm/image_main.ts",
    runFlags: IMAGE_RUN_FLAGS,
  });
  console.log(
    `image: ${o.output} (kind sfx: self-extracting, because ${why}; ${files.length} files + ` +
      `deno ${Deno.version.deno} from ${Deno.execPath()}, ${(r.bytes / 1e6).toFixed(1)} MB, ` +
      `hash ${r.hash}) (run ${o.output} --help)`,
  );
  return 0;
}

if (import.meta.main) Deno.exit(await buildImage(Deno.args));
