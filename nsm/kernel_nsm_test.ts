// Command-line handling of `deno task nsm --stack kernel` (the serving itself is tested end to
// end in tests/nsm_kernel_backend_test.ts).

import assert from "node:assert/strict";
import { KernelNsmUsageError, parseKernelNsmArgs, splitStackFlag } from "./kernel_nsm.ts";

Deno.test("splitStackFlag() takes --stack tcpip|kernel out of the arguments; tcpip by default", () => {
  assert.deepEqual(splitStackFlag(["--link", "tap:x"]), {
    stack: "tcpip",
    rest: ["--link", "tap:x"],
  });
  assert.deepEqual(splitStackFlag(["--stack", "kernel", "--ctl", "/c"]), {
    stack: "kernel",
    rest: ["--ctl", "/c"],
  });
  assert.deepEqual(splitStackFlag(["--stack=tcpip"]), { stack: "tcpip", rest: [] });
  assert.throws(() => splitStackFlag(["--stack", "bsd"]), KernelNsmUsageError);
  assert.throws(() => splitStackFlag(["--stack"]), /give tcpip or kernel/);
});

Deno.test("parseKernelNsmArgs() reads its flags and rejects our stack's with the reason", () => {
  assert.deepEqual(
    parseKernelNsmArgs([
      "--ctl",
      "/tmp/c.sock",
      "--rcvbuf=65536",
      "--sndbuf",
      "8192",
      "--stall-ms",
      "300",
      "--spin-us",
      "200",
    ]),
    { ctl: "/tmp/c.sock", rcvBuf: 65536, sndBuf: 8192, stallMs: 300, spinUs: 200 },
  );
  assert.throws(() => parseKernelNsmArgs(["--ip", "198.18.0.1/24"]), /owns the addresses/);
  assert.throws(() => parseKernelNsmArgs(["--link", "xdp:eth0"]), /owns the interfaces/);
  assert.throws(() => parseKernelNsmArgs(["--cc", "cubic"]), /tcp_congestion_control/);
  assert.throws(() => parseKernelNsmArgs(["--echo", "7"]), /run them as guests/);
  assert.throws(() => parseKernelNsmArgs(["--rcvbuf", "100"]), /integer >= 4096/);
  assert.throws(() => parseKernelNsmArgs(["--ctl"]), /needs a value/);
  assert.throws(() => parseKernelNsmArgs(["--frobnicate"]), /unknown flag/);
});
