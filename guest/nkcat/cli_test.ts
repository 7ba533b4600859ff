import assert from "node:assert/strict";
import { NkcatUsageError, parseNkcatArgs } from "./cli.ts";
import { defaultCtlPath } from "../../nsm/ctl_path.ts";

Deno.test("parseNkcatArgs reads HOST PORT, --listen PORT and --ctl, defaulting --ctl like the NSM", () => {
  assert.deepEqual(parseNkcatArgs(["198.18.0.2", "80"]), {
    ctl: defaultCtlPath(),
    listen: null,
    host: "198.18.0.2",
    port: 80,
  });
  assert.deepEqual(parseNkcatArgs(["--ctl", "/x.sock", "--listen", "7"]), {
    ctl: "/x.sock",
    listen: 7,
    host: "",
    port: 0,
  });
});

Deno.test("parseNkcatArgs rejects missing or extra operands, bad ports and unknown flags with usage", () => {
  for (
    const bad of [[], ["h"], ["h", "0"], ["h", "70000"], ["--listen", "7", "h", "1"], ["-x"], [
      "--ctl",
    ]]
  ) {
    assert.throws(() => parseNkcatArgs(bad), NkcatUsageError, JSON.stringify(bad));
  }
});
