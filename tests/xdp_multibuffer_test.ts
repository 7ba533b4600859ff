/**
 * XdpLink multi-buffer (XDP_USE_SG) against the Linux stack on a 9000-byte MTU veth lab: jumbo
 * frames arrive as descriptor chains reassembled into one frame, and a jumbo frame we send is
 * split across UMEM frames and reaches the peer's socket whole. Needs root, iproute2, python3.
 */

import assert from "node:assert/strict";
import { needsAll, needsRoot, needsTool } from "./support/require.ts";
import { Lab } from "../xdp/lab.ts";
import { XdpLink } from "../xdp/xdp_link.ts";
import { transmitCopy } from "../stacks/link/link.ts";
import { collect, udpFrame, udpPayloadTo } from "./xdp_support.ts";

const gate = needsAll(needsRoot(), needsTool("ip"), needsTool("python3"), needsTool("timeout"));

for (const attachMode of ["native", "skb"] as const) {
  Deno.test({
    name:
      `XdpLink (${attachMode}) on MTU 9000 receives 8000-byte datagrams as one frame and sends an 8000-byte frame in a chain`,
    ignore: gate.ignore,
    async fn(): Promise<void> {
      gate.assert();
      await using lab = await Lab.up({ offloads: "off", mtu: 9000 });
      await lab.staticNeighbours();
      using link = XdpLink.open({
        ifname: lab.nsmIf,
        ringSize: 256,
        handleSignals: false,
        attachMode,
      });
      assert.equal(link.multiBuffer, true);
      assert.equal(link.mtu, 9000);
      // The peer listens on 7777 for our jumbo frame, after sending three jumbo datagrams.
      const script = "import socket\n" +
        "r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n" +
        "r.bind(('0.0.0.0', 7777)); r.settimeout(5)\n" +
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n" +
        `for i in range(3): s.sendto(bytes([i]) * 8000, ('${lab.nsmV4}', 9999))\n` +
        "d, a = r.recvfrom(9000)\n" +
        "print(len(d), d[0], d[-1], len(set(d[1:-1])))\n";
      const peer = lab.peer(["timeout", "10", "python3", "-c", script], true);
      const frames = await collect(
        link,
        (fs) => fs.filter((f) => udpPayloadTo(f, 9999) !== null).length >= 3,
        30_000, // returns as soon as the frames are in; generous for a loaded machine
      );
      const payloads = frames.map((f) => udpPayloadTo(f, 9999)).filter((p) => p !== null);
      assert.equal(payloads.length, 3);
      payloads.forEach((p, i) => {
        assert.equal(p!.length, 8000);
        assert.ok(p!.every((b) => b === i), `datagram ${i} reassembled in order`);
      });
      const body = new Uint8Array(8000).fill(0x5a);
      body[0] = 1;
      body[7999] = 2;
      const reply = udpFrame({
        srcMac: lab.nsmMac,
        dstMac: lab.peerMac,
        srcIp: lab.nsmV4,
        dstIp: lab.peerV4,
        srcPort: 9999,
        dstPort: 7777,
        payload: body,
      });
      assert.ok(transmitCopy(link, reply));
      link.flush();
      // Keep flushing (completions, kicks) until the peer has read it (bounded).
      let done = false;
      const finished = peer.then((res) => {
        done = true;
        return res;
      });
      for (let i = 0; i < 250 && !done; i++) {
        link.flush();
        await new Promise((res) => setTimeout(res, 20));
      }
      const r = await finished;
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), "8000 1 2 1");
      const s = link.stats();
      assert.equal(s.rxMultiBuffer, 3);
      assert.equal(s.txMultiBuffer, 1);
      assert.equal(s.rxTooLong, 0);
      assert.equal(s.kernel.txInvalidDescs, 0);
      assert.equal(s.ownershipViolations, 0);
    },
  });
}
