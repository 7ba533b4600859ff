import assert from "node:assert/strict";
import { defaultSocketOptions } from "./config.ts";
import { TcpScript } from "./script.ts";

const ISS = 5000;
const PEER = 1000;

Deno.test("after a short segment that emptied the send queue, the next full segment ends on an MSS boundary of the send ring and the ones after it are full", () => {
  const s = new TcpScript({
    iss: ISS,
    config: {
      timestamps: false,
      ecn: false,
      socket: {
        ...defaultSocketOptions(),
        noDelay: true,
        receiveBufferSize: 65535,
        sendBufferSize: 65535,
      },
    },
  });
  const l = s.stack.listen(null, s.port, 16);
  s.inject({ flags: "S", seq: PEER, win: 65535, mss: 1460 });
  s.expect({ flags: "S.", seq: ISS, ack: PEER + 1 });
  s.inject({ flags: ".", seq: PEER + 1, ack: ISS + 1, win: 65535 });
  const c = s.stack.accept(l);
  assert.ok(c > 0);
  // Four full segments grow the ring's storage to whole MSS units; all acknowledged.
  s.stack.send(c, new Uint8Array(4 * 1460), s.now);
  for (let i = 0; i < 4; i++) s.expect({ seq: ISS + 1 + i * 1460, data: 1460 });
  s.inject({ flags: ".", seq: PEER + 1, ack: ISS + 1 + 4 * 1460, win: 65535 });
  const base = ISS + 1 + 4 * 1460;
  // A 100-byte write goes out alone (nothing in flight, no Nagle wait)...
  s.stack.send(c, new Uint8Array(100), s.now);
  s.expect({ flags: "P.", seq: base, data: 100 });
  s.inject({ flags: ".", seq: PEER + 1, ack: base + 100, win: 65535 });
  // ...so the next bulk write starts 100 bytes past a unit boundary: 1360 bytes re-align it,
  // then whole MSS segments follow.
  s.stack.send(c, new Uint8Array(3 * 1460), s.now);
  s.expect({ flags: ".", seq: base + 100, data: 1360 });
  s.expect({ flags: ".", seq: base + 1460, data: 1460 });
  s.expect({ flags: ".", seq: base + 2920, data: 1460 });
  s.expect({ flags: "P.", seq: base + 4380, data: 100 });
});
