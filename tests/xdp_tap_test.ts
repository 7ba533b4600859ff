/**
 * TapLink (the AF_XDP fallback) with our interface layer against the Linux stack: the TAP's
 * kernel side is moved into the lab's peer namespace and plays the peer. Needs root,
 * iproute2, ping, python3 and /dev/net/tun.
 */

import assert from "node:assert/strict";
import { needsAll, needsRoot, needsTool } from "./support/require.ts";
import { Lab } from "../xdp/lab.ts";
import { TapLink } from "../xdp/tap.ts";
import { Interface } from "../stacks/tcpip/iface/interface.ts";
import { MILLISECOND, monotonicNow } from "../stacks/time.ts";

const gate = needsAll(needsRoot(), needsTool("ip"), needsTool("ping"), needsTool("python3"));

Deno.test({
  name: "Interface on TapLink answers the peer's ping/ping -6 and echoes its UDP (TAP fallback)",
  ignore: gate.ignore,
  async fn(): Promise<void> {
    gate.assert();
    await using lab = await Lab.up({ veth: false });
    const tapName = `${lab.name}t`;
    using tap = TapLink.open({ ifname: tapName });
    await lab.adoptPeer(tapName);
    const iface = new Interface(tap, {
      ipv4: [{ address: lab.nsmV4, prefixLength: 24 }],
      ipv6: [{ address: lab.nsmV6, prefixLength: 64 }],
    });
    const udp = iface.createUdp();
    const sock = udp.bind(null, 7);
    const buf = new Uint8Array(2048);
    let running = true;
    const loop = (async () => {
      const deadline = monotonicNow() + 30_000 * MILLISECOND;
      while (running && monotonicNow() < deadline) {
        const busy = iface.poll(monotonicNow());
        for (let r = sock.recvFrom(buf); r !== null; r = sock.recvFrom(buf)) {
          sock.sendTo(buf.subarray(0, r.length), r.address, r.port);
        }
        tap.flush();
        if (!busy) await tap.wait(5);
      }
    })();
    try {
      const v4 = await lab.peer(["ping", "-c", "2", "-i", "0.2", "-W", "2", lab.nsmV4], true);
      assert.match(v4.stdout, / 0% packet loss/, v4.stdout + v4.stderr);
      const v6 = await lab.peer(["ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", lab.nsmV6], true);
      assert.match(v6.stdout, / 0% packet loss/, v6.stdout + v6.stderr);
      const script = "import socket\n" +
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n" +
        "s.settimeout(3)\n" +
        `s.sendto(b'over-tap', ('${lab.nsmV4}', 7))\n` +
        "print(s.recvfrom(100)[0].decode())\n";
      const r = await lab.peer(["python3", "-c", script], true);
      assert.equal(r.stdout.trim(), "over-tap", r.stderr);
      // Offloads stay at the TAP's defaults: without a vnet header the kernel hands us
      // complete checksums, so nothing was dropped as bad-checksum.
      assert.equal(iface.drops.get("bad-checksum"), 0);
      const s = tap.stats();
      assert.ok(s.rxPackets >= 5 && s.txPackets >= 5, JSON.stringify(s));
    } finally {
      running = false;
      await loop;
    }
  },
});
