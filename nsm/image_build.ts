/**
 * `deno task image`: builds the NSM image, one executable (`deno compile`) that runs `nsm`,
 * `ctl`, `nkcat` and `nkperf` as subcommands (nsm/image_main.ts), with the WebAssembly
 * congestion-control modules of cc/dist/ embedded (`--include`), so `--cc cubic|dctcp|bbr` and
 * `ctl cc set` work without the source tree.
 *
 * ```sh
 * deno task image [--output out/nsm-image] [--target x86_64-unknown-linux-gnu]
 * ```
 *
 * `deno compile` needs the `denort` runtime of the same Deno version for the target. It
 * downloads it once from dl.deno.land into $DENO_DIR/dl/ (the npm `deno` package does not
 * ship it); offline, point `DENORT_BIN` at a denort binary of the same version (from
 * https://dl.deno.land/release/v2.9.6/denort-x86_64-unknown-linux-gnu.zip on another machine).
 *
 * @module
 */

import { ensureBuilt } from "../cc/build.ts";
import { BUNDLED_CC } from "./cc_modules.ts";

/** What the builder runs `deno compile` with. */
export interface ImageBuildOptions {
  /** Output path of the executable. */
  readonly output: string;
  /** `--target` triple, or undefined for this machine's. */
  readonly target: string | undefined;
}

/** Parses the builder's flags. */
export function parseImageArgs(argv: readonly string[]): ImageBuildOptions {
  let output = "out/nsm-image";
  let target: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = argv[i + 1];
    if ((a === "--output" || a === "-o") && v !== undefined) {
      output = v;
      i++;
    } else if (a === "--target" && v !== undefined) {
      target = v;
      i++;
    } else {
      throw new Error(
        `unknown argument ${a}; usage: deno task image [--output FILE] [--target TRIPLE]`,
      );
    }
  }
  return { output, target };
}

/** The `deno compile` arguments for `o` (paths relative to the repository root). */
export function compileArgs(o: ImageBuildOptions, root: URL): string[] {
  const rel = (p: string): string => new URL(p, root).pathname;
  return [
    "compile",
    // The NSM needs net (metrics, control socket), read/write (/dev/shm devices, the control
    // socket, embedded cc modules), ffi (AF_XDP, bpf(2), mmap), env (NSM_CTL, XDG_RUNTIME_DIR)
    // and sys; no subprocesses. --unstable-net: UDP of --stack kernel (Deno.listenDatagram).
    "--unstable-net",
    "--allow-net",
    "--allow-read",
    "--allow-write",
    "--allow-ffi",
    "--allow-env",
    "--allow-sys",
    "--include",
    rel("cc/dist/"),
    "--output",
    o.output,
    ...(o.target !== undefined ? ["--target", o.target] : []),
    rel("nsm/image_main.ts"),
  ];
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
  const args = compileArgs(o, root);
  console.log(`image: deno ${args.join(" ")}`);
  const r = await new Deno.Command(Deno.execPath(), {
    args,
    stdout: "inherit",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(r.stderr);
  if (!r.success) {
    console.error(err);
    if (/denort|dl\.deno\.land|dns error|error sending request/.test(err)) {
      console.error(
        `image: deno compile needs the denort runtime (Deno ${Deno.version.deno}) and could not ` +
          `download it. Fetch https://dl.deno.land/release/v${Deno.version.deno}/denort-` +
          `${o.target ?? Deno.build.target}.zip where the network is reachable, unzip it, and ` +
          `run DENORT_BIN=/path/to/denort deno task image`,
      );
    }
    return 1;
  }
  console.log(`image: ${o.output} (run ${o.output} --help)`);
  return 0;
}

if (import.meta.main) Deno.exit(await buildImage(Deno.args));
