import assert from "node:assert/strict";
import { main, parseArgs, UsageError } from "./cli.ts";
import { memoryNet } from "./net.ts";

Deno.test("parseArgs() reads iperf3-style client and server options", () => {
  const c = parseArgs([
    "-c",
    "198.18.0.2",
    "-p",
    "5202",
    "-t",
    "2",
    "-P",
    "4",
    "-R",
    "-O",
    "1",
    "-l",
    "64K",
    "-J",
    "-i",
    "0.5",
  ]); // deno-fmt-ignore
  assert.deepEqual(c, {
    mode: "client",
    host: "198.18.0.2",
    port: 5202,
    time: 2,
    parallel: 4,
    reverse: true,
    omit: 1,
    len: 65536,
    json: true,
    intervalSec: 0.5,
    oneOff: false,
    bind: undefined,
  });
  const s = parseArgs(["-s", "-1", "--port", "7000", "-B", "198.18.0.1"]);
  assert.equal(s.bind, "198.18.0.1");
  assert.equal(s.mode, "server");
  assert.equal(s.oneOff, true);
  assert.equal(s.port, 7000);
  assert.equal(parseArgs(["-c", "h", "-l", "1.5M"]).len, 1572864);
});

Deno.test("parseArgs() rejects unknown options, missing values and no mode with UsageError", () => {
  assert.throws(() => parseArgs(["-c"]), UsageError);
  assert.throws(() => parseArgs(["-s", "-u"]), /unknown option '-u'/);
  assert.throws(() => parseArgs(["-t", "2"]), /pass -s/);
  assert.throws(() => parseArgs(["-c", "h", "-l", "lots"]), UsageError);
  assert.throws(() => parseArgs(["-s", "-p", "70000"]), UsageError);
});

Deno.test("main() prints iperf3-like text on both sides and exits 0", async () => {
  const net = memoryNet();
  const srvOut: string[] = [];
  const cliOut: string[] = [];
  const srv = main(["-s", "-1"], net, (s) => srvOut.push(s));
  const code = await main(["-c", "h", "-t", "0.3", "-P", "2"], net, (s) => cliOut.push(s));
  assert.equal(code, 0);
  assert.equal(await srv, 0);
  assert.equal(cliOut.at(-1), "iperf Done.");
  assert.ok(cliOut.some((l) => /^\[SUM\] .*sec .*sender$/.test(l)), cliOut.join("\n"));
  assert.ok(srvOut.some((l) => /^\[SUM\] .*receiver$/.test(l)), srvOut.join("\n"));
  assert.ok(srvOut.some((l) => l.startsWith("Accepted connection from")));
});

Deno.test("main() -J with a refused connection prints {error} and exits 1", async () => {
  const out: string[] = [];
  const code = await main(["-c", "h", "-t", "1", "-J"], memoryNet(), (s) => out.push(s));
  assert.equal(code, 1);
  assert.match(String(JSON.parse(out.join("\n")).error), /connection refused/);
});

Deno.test("main() -s exits 1 with an error line when it cannot listen, whether listen() throws or the listener's ready rejects", async () => {
  const base = memoryNet();
  const inUse = new Error("address in use");
  const throwing = {
    ...base,
    listen: (): never => {
      throw inUse;
    },
  };
  const rejecting = {
    ...base,
    listen: (o: { port: number; hostname?: string }) =>
      Object.assign(base.listen(o), { ready: Promise.reject(inUse) }),
  };
  for (const net of [throwing, rejecting]) {
    const out: string[] = [];
    assert.equal(await main(["-s", "-p", "5209"], net, (s) => out.push(s)), 1);
    assert.ok(
      out.some((l) => l === "nkperf: error - cannot listen on port 5209: address in use"),
      out.join("\n"),
    );
    assert.ok(!out.some((l) => /Server listening/.test(l)), out.join("\n"));
  }
});
