/**
 * The self-extracting NSM image: `deno task image`'s fallback when `deno compile` cannot get
 * Deno's `denort` runtime (it is only on dl.deno.land, not in the npm registry; the npm
 * package's full `deno` binary used as `DENORT_BIN` ignores the embedded program and starts
 * the REPL).
 *
 * The image is one file: a POSIX sh header of {@link SFX_HEADER_SIZE} bytes followed by a ustar
 * archive holding `deno` (the pinned binary that runs the build) and `src/` (the modules of
 * nsm/image_main.ts's graph in their repository layout, plus cc/dist/*.wasm). On first run the
 * header extracts the archive into `<cache>/<hash>` (hash of the archive, so a new image never
 * reuses an old tree) and then always execs
 * `deno run --cached-only --no-remote --no-npm --no-config --no-lock <flags> src/nsm/image_main.ts`
 * with `DENO_DIR` inside that directory: nothing is fetched at run time.
 *
 * `<cache>` is `$NSM_IMAGE_CACHE`, else systemd's `$CACHE_DIRECTORY`, else
 * `$XDG_CACHE_HOME/nsm-image`, else `$HOME/.cache/nsm-image`. The target needs `sh`, `tail`,
 * `tar` and `mkdir`/`mv`/`rm` (any POSIX system has them).
 *
 * @module
 */

/** Bytes of the sh header; the archive starts right after it. */
export const SFX_HEADER_SIZE = 4096;

/** One archive member. */
export interface TarEntry {
  /** Relative path ("/"-separated, no leading "/", at most 100 bytes). */
  readonly path: string;
  /** File contents. */
  readonly data: Uint8Array;
  /** Permission bits (0o644 or 0o755). */
  readonly mode: number;
}

/** Thrown when an archive member cannot be represented in a plain ustar header. */
export class TarPathError extends Error {
  /** `path`: the offending member name. */
  constructor(path: string) {
    super(
      `cannot archive "${path}": ustar names here must be relative and at most 100 bytes; ` +
        `shorten the path or move the file`,
    );
    this.name = "TarPathError";
  }
}

const BLOCK = 512;

/** Writes `v` as a NUL-terminated octal field of `width` bytes at `off`. */
function octal(h: Uint8Array, off: number, width: number, v: number): void {
  const s = v.toString(8).padStart(width - 1, "0");
  for (let i = 0; i < width - 1; i++) h[off + i] = s.charCodeAt(i);
  h[off + width - 1] = 0;
}

/**
 * A ustar archive of `entries` (in the given order, directories implied, mtime 0, owner 0):
 * deterministic, so the same inputs give the same bytes and the same image hash.
 */
export function tarArchive(entries: readonly TarEntry[]): Uint8Array<ArrayBuffer> {
  const enc = new TextEncoder();
  let size = 2 * BLOCK; // two zero blocks end the archive
  for (const e of entries) size += BLOCK + Math.ceil(e.data.length / BLOCK) * BLOCK;
  const out = new Uint8Array(size);
  let off = 0;
  for (const e of entries) {
    const name = enc.encode(e.path);
    if (name.length > 100 || name.length === 0 || e.path.startsWith("/") || e.path.includes("..")) {
      throw new TarPathError(e.path);
    }
    const h = out.subarray(off, off + BLOCK);
    h.set(name, 0);
    octal(h, 100, 8, e.mode); // mode
    octal(h, 108, 8, 0); // uid
    octal(h, 116, 8, 0); // gid
    octal(h, 124, 12, e.data.length); // size
    octal(h, 136, 12, 0); // mtime
    h.fill(0x20, 148, 156); // checksum is computed with its own field as spaces
    h[156] = 0x30; // typeflag '0': regular file
    h.set(enc.encode("ustar\u0000"), 257);
    h.set(enc.encode("00"), 263);
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += h[i]!;
    octal(h, 148, 7, sum);
    h[155] = 0x20;
    off += BLOCK;
    out.set(e.data, off);
    off += Math.ceil(e.data.length / BLOCK) * BLOCK;
  }
  return out;
}

/** Quotes `s` for sh (single quotes). */
function shQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/**
 * The sh header, padded to exactly {@link SFX_HEADER_SIZE} bytes: extracts the archive that
 * follows it into the cache directory keyed by `hash` (once) and execs the embedded deno with
 * `runFlags` on `src/<entry>`.
 */
export function sfxHeader(hash: string, runFlags: readonly string[], entry: string): Uint8Array {
  if (!/^[0-9a-f]{8,64}$/.test(hash)) throw new Error(`bad image hash "${hash}": hex digits only`);
  const flags = [
    "--cached-only",
    "--no-remote",
    "--no-npm",
    "--no-config",
    "--no-lock",
    "--no-prompt",
    ...runFlags,
  ].map(shQuote).join(" ");
  const script = `#!/bin/sh
# NSM image, self-extracting (deno task image; nsm/image_sfx.ts). After byte ${SFX_HEADER_SIZE}:
# a tar of the Deno ${Deno.version.deno} binary and the NSM sources, extracted once per image hash.
set -eu
h=${hash}
c=\${NSM_IMAGE_CACHE:-\${CACHE_DIRECTORY:-\${XDG_CACHE_HOME:-\${HOME:-/nonexistent}/.cache}/nsm-image}}
d=$c/$h
if [ ! -f "$d/.complete" ]; then
  t=$d.tmp.$$
  if ! { mkdir -p "$c" && rm -rf "$t" && mkdir "$t"; } 2>/dev/null; then
    echo "nsm-image: cannot write the cache directory $c; set NSM_IMAGE_CACHE to a writable one" >&2
    exit 1
  fi
  if ! tail -c +${SFX_HEADER_SIZE + 1} "$0" | tar -xf - -C "$t"; then
    rm -rf "$t"
    echo "nsm-image: extracting $0 into $t failed (needs tail and tar, and free space)" >&2
    exit 1
  fi
  : > "$t/.complete"
  if [ -f "$d/.complete" ]; then rm -rf "$t"; else rm -rf "$d"; mv "$t" "$d"; fi
fi
DENO_DIR=$d/deno_dir
DENO_NO_UPDATE_CHECK=1
NSM_IMAGE=$0
export DENO_DIR DENO_NO_UPDATE_CHECK NSM_IMAGE
exec "$d/deno" run ${flags} "$d/src/${entry}" "$@"
exit 127
`;
  const enc = new TextEncoder();
  const body = enc.encode(script);
  if (body.length + 2 > SFX_HEADER_SIZE) {
    throw new Error(`sfx header is ${body.length} bytes; raise SFX_HEADER_SIZE`);
  }
  const out = new Uint8Array(SFX_HEADER_SIZE).fill(0x23); // '#' padding: a comment, never read
  out.set(body, 0);
  out[SFX_HEADER_SIZE - 1] = 0x0a;
  return out;
}

/** What {@link buildSfxImage} packs. */
export interface SfxImageInput {
  /** Output path of the executable. */
  readonly output: string;
  /** The deno binary to embed (the pinned one: `Deno.execPath()`). */
  readonly denoBin: string;
  /** Repository root; `files` are relative to it. */
  readonly root: URL;
  /** Files to carry under `src/` (repository-relative, "/"-separated). */
  readonly files: readonly string[];
  /** Entry module, repository-relative (e.g. "nsm/image_main.ts"). */
  readonly entry: string;
  /** Permission and unstable flags for `deno run`. */
  readonly runFlags: readonly string[];
}

/** What {@link buildSfxImage} wrote. */
export interface SfxImageResult {
  /** The archive's SHA-256 prefix (the cache key). */
  readonly hash: string;
  /** Size of the image file in bytes. */
  readonly bytes: number;
}

/** Writes the self-extracting image (mode 0755). */
export async function buildSfxImage(input: SfxImageInput): Promise<SfxImageResult> {
  const entries: TarEntry[] = [
    { path: "deno", data: await Deno.readFile(input.denoBin), mode: 0o755 },
  ];
  for (const f of [...input.files].sort()) {
    entries.push({
      path: `src/${f}`,
      data: await Deno.readFile(new URL(f, input.root)),
      mode: 0o644,
    });
  }
  const tar = tarArchive(entries);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", tar));
  const hash = Array.from(digest.subarray(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
  const header = sfxHeader(hash, input.runFlags, input.entry);
  const tmp = `${input.output}.tmp-${Deno.pid}`;
  const f = await Deno.open(tmp, { write: true, create: true, truncate: true, mode: 0o755 });
  try {
    for (const part of [header, tar]) {
      for (let off = 0; off < part.length;) off += await f.write(part.subarray(off));
    }
  } finally {
    f.close();
  }
  await Deno.chmod(tmp, 0o755);
  await Deno.rename(tmp, input.output);
  return { hash, bytes: header.length + tar.length };
}
