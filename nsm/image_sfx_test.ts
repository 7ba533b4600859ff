import assert from "node:assert/strict";
import { SFX_HEADER_SIZE, sfxHeader, tarArchive, TarPathError } from "./image_sfx.ts";

const dec = new TextDecoder();

Deno.test("tarArchive() output is read back by tar with the same names, modes and bytes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "nsm_tar_test_" });
  try {
    const data = new Uint8Array(1000).map((_, i) => i & 0xff);
    const tar = tarArchive([
      { path: "deno", data, mode: 0o755 },
      { path: "src/nsm/a.ts", data: new TextEncoder().encode("x"), mode: 0o644 },
    ]);
    assert.equal(tar.length % 512, 0);
    await Deno.writeFile(`${dir}/t.tar`, tar);
    const r = await new Deno.Command("tar", { args: ["-xf", "t.tar"], cwd: dir }).output();
    assert.ok(r.success, dec.decode(r.stderr));
    assert.deepEqual(await Deno.readFile(`${dir}/deno`), data);
    assert.equal((await Deno.stat(`${dir}/deno`)).mode! & 0o777, 0o755);
    assert.equal(await Deno.readTextFile(`${dir}/src/nsm/a.ts`), "x");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tarArchive() gives the same bytes for the same entries (the image hash is stable)", () => {
  const e = [{ path: "a", data: new Uint8Array([1, 2, 3]), mode: 0o644 }];
  assert.deepEqual(tarArchive(e), tarArchive(e));
});

Deno.test("tarArchive() refuses absolute, '..' and over-100-byte names with TarPathError", () => {
  for (const path of ["/etc/x", "a/../b", "x".repeat(101)]) {
    assert.throws(() => tarArchive([{ path, data: new Uint8Array(0), mode: 0o644 }]), TarPathError);
  }
});

Deno.test("sfxHeader() is exactly SFX_HEADER_SIZE bytes of sh that carries the hash and flags", () => {
  const h = sfxHeader("0123456789abcdef", ["--allow-net"], "nsm/image_main.ts");
  assert.equal(h.length, SFX_HEADER_SIZE);
  const text = dec.decode(h);
  assert.ok(text.startsWith("#!/bin/sh\n"));
  assert.match(text, /^h=0123456789abcdef$/m);
  assert.match(text, new RegExp(`tail -c \\+${SFX_HEADER_SIZE + 1} "\\$0"`));
  assert.match(text, /'--cached-only' .*'--allow-net' "\$d\/src\/nsm\/image_main.ts" "\$@"/);
  assert.equal(h[SFX_HEADER_SIZE - 1], 0x0a);
  assert.throws(() => sfxHeader("../x", [], "a.ts"), /hex digits only/);
});
