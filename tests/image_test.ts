/**
 * `deno task image` end to end: builds the image (here the self-extracting kind, since
 * dl.deno.land is unreachable; on a machine that can get denort, the compiled kind) and runs
 * its subcommands with an empty HOME and cache, no network needed, the way a fresh host would.
 */

import assert from "node:assert/strict";
import { buildImage } from "../nsm/image_build.ts";

const dec = new TextDecoder();

interface Run {
  code: number;
  out: string;
  err: string;
}

/** Runs `image args` with only PATH and the given HOME/extra env (no inherited caches). */
async function run(image: string, args: string[], env: Record<string, string>): Promise<Run> {
  const r = await new Deno.Command(image, {
    args,
    clearEnv: true,
    env: { PATH: "/usr/bin:/bin", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: r.code, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
}

Deno.test({
  name:
    "deno task image builds one executable whose nsm/ctl/nkcat/nkperf/version subcommands run offline " +
    "from an empty HOME, with the cc modules inside",
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "nsm_image_test_" });
    try {
      const image = `${dir}/out/nsm-image`;
      assert.equal(await buildImage(["--output", image]), 0);
      const st = await Deno.stat(image);
      assert.ok(st.isFile && (st.mode! & 0o111) !== 0, "image is an executable file");
      const entries = [];
      for await (const e of Deno.readDir(`${dir}/out`)) entries.push(e.name);
      assert.deepEqual(entries, ["nsm-image"], "one file, no side files");

      const home = `${dir}/home`;
      await Deno.mkdir(home);
      const env = { HOME: home };

      const v = await run(image, ["version"], env);
      assert.equal(v.code, 0, v.err);
      assert.match(v.out, new RegExp(`^deno ${Deno.version.deno} `));
      assert.match(v.out, /^cc cubic=ok dctcp=ok bbr=ok aimd=ok$/m);
      const main = /^main (\S+)$/m.exec(v.out)?.[1];
      assert.ok(main !== undefined, v.out);
      const head = dec.decode((await Deno.readFile(image)).subarray(0, 2));
      if (head === "#!") {
        // Self-extracting: runs from its copy unpacked under $HOME/.cache/nsm-image/<hash>/, not
        // from the repository. (A compiled image's mainModule is a virtual path: not checked.)
        assert.ok(main.startsWith(`file://${home}/.cache/nsm-image/`), main);
      }

      const ctl = await run(image, ["ctl", "--help"], env);
      assert.equal(ctl.code, 0, ctl.err);
      assert.match(ctl.out, /^usage: deno task ctl/);

      const nsm = await run(image, ["nsm", "--help"], env);
      assert.equal(nsm.code, 0, nsm.err);
      assert.match(nsm.out, /--link xdp:IF/);

      const perf = await run(image, ["nkperf", "--help"], env);
      assert.equal(perf.code, 0, perf.err);
      assert.match(perf.out, /^Usage: nkperf/);

      const cat = await run(image, ["nkcat"], env);
      assert.equal(cat.code, 2, "nkcat without HOST PORT is a usage error");
      assert.match(cat.err, /usage: nkcat/);

      const bad = await run(image, ["nsm"], env);
      assert.notEqual(bad.code, 0, "the NSM without --link/--ip is a usage error");

      const unknown = await run(image, ["bogus"], env);
      assert.equal(unknown.code, 2);
      assert.match(unknown.err, /unknown command "bogus"/);

      // A cache directory that cannot be created is reported, not a shell error.
      if (head === "#!") {
        const ro = await run(image, ["version"], { NSM_IMAGE_CACHE: "/proc/nsm-image-test" });
        assert.equal(ro.code, 1);
        assert.match(ro.err, /set NSM_IMAGE_CACHE to a writable one/);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
