/**
 * XdpLink against the Linux stack in a veth lab (needs root, iproute2, ethtool, tcpdump,
 * python3). Each test builds its own lab with unique names and removes it in all cases.
 */

import assert from "node:assert/strict";
import { needsAll, needsRoot, needsTool } from "./support/require.ts";
import { Lab } from "../xdp/lab.ts";
import { XdpLink } from "../xdp/xdp_link.ts";
import { XdpAlreadyAttachedError } from "../xdp/libc.ts";
import { collect, PeerCapture, udpFrame, udpPayloadTo, writeUdpFrame } from "./xdp_support.ts";

const gate = needsAll(
  needsRoot(),
  needsTool("ip"),
  needsTool("ethtool"),
  needsTool("tcpdump"),
  needsTool("python3"),
);

function pySend(lab: Lab, port: number, count: number, tag: string): string[] {
  return [
    "python3",
    "-c",
    "import socket\n" +
    "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n" +
    `for i in range(${count}):\n` +
    `    s.sendto(b'${tag}-%d' % i, ('${lab.nsmV4}', ${port}))\n`,
  ];
}

Deno.test({
  name: "XdpLink hands up UDP datagrams the Linux peer sends, as views into UMEM frames",
  ignore: gate.ignore,
  async fn(): Promise<void> {
    gate.assert();
    await using lab = await Lab.up({ offloads: "off" });
    await lab.staticNeighbours();
    using link = XdpLink.open({ ifname: lab.nsmIf, ringSize: 256, handleSignals: false });
    assert.equal(link.mode, "copy");
    assert.equal(link.attachMode, "skb");
    assert.ok(await lab.nsmHasXdp(), "the program shows up in ip link show");
    const views: Uint8Array[] = [];
    const sender = lab.peer(pySend(lab, 9999, 20, "xdp-rx"), true);
    const frames = await collect(
      {
        receive: (cb, max) =>
          link.receive((f) => {
            views.push(f); // kept only to inspect buffer/offset, never read after the callback
            cb(f);
          }, max),
        transmitBuffer: (n) => link.transmitBuffer(n),
        commit: (n) => link.commit(n),
        flush: () => link.flush(),
        close: () => link.close(),
        wait: (ms) => link.wait(ms),
        name: link.name,
        mac: link.mac,
        mtu: link.mtu,
        capabilities: link.capabilities,
      },
      (fs) => fs.filter((f) => udpPayloadTo(f, 9999) !== null).length >= 20,
      30_000, // returns as soon as the frames are in; generous for a loaded machine
    );
    await sender;
    const payloads = frames.map((f) => udpPayloadTo(f, 9999)).filter((p) => p !== null)
      .map((p) => new TextDecoder().decode(p));
    assert.deepEqual(payloads, Array.from({ length: 20 }, (_, i) => `xdp-rx-${i}`));
    const udp = frames.find((f) => udpPayloadTo(f, 9999) !== null)!;
    assert.deepEqual([...udp.subarray(0, 6)], [...link.mac], "addressed to our MAC");
    // Zero-copy receive: every view shares one big buffer (the UMEM) and starts after the
    // kernel's headroom inside a 2048-byte frame.
    const umem = views[0]!.buffer;
    assert.ok(views.every((v) => v.buffer === umem));
    assert.ok(umem.byteLength >= 2 * 256 * 2048);
    assert.ok(views.every((v) => v.byteOffset % 2048 === 256));
    const s = link.stats();
    assert.ok(s.rxPackets >= 20);
    assert.equal(s.ownershipViolations, 0);
  },
});

Deno.test({
  name: "XdpLink transmits frames written in place; tcpdump on the peer sees them byte for byte",
  ignore: gate.ignore,
  async fn(): Promise<void> {
    gate.assert();
    await using lab = await Lab.up({ offloads: "off" });
    using link = XdpLink.open({ ifname: lab.nsmIf, ringSize: 64, handleSignals: false });
    await using cap = await PeerCapture.start(lab, "udp port 7777", 5);
    const sent: Uint8Array[] = [];
    for (let i = 0; i < 5; i++) {
      const spec = {
        srcMac: lab.nsmMac,
        dstMac: lab.peerMac,
        srcIp: lab.nsmV4,
        dstIp: lab.peerV4,
        srcPort: 40000 + i,
        dstPort: 7777,
        payload: new TextEncoder().encode(`xdp-tx-${i}`),
      };
      const frame = udpFrame(spec);
      const buf = link.transmitBuffer(frame.length);
      assert.ok(buf !== null);
      writeUdpFrame(buf, spec);
      link.commit(frame.length);
      sent.push(frame);
    }
    link.flush();
    // Bounded but generous: tcpdump exits by itself as soon as it has the 5 frames.
    const recs = await cap.records(30_000);
    assert.equal(recs.length, 5, `tcpdump: ${cap.log}`);
    recs.forEach((r, i) => assert.deepEqual([...r.data], [...sent[i]!]));
    const s = link.stats();
    assert.equal(s.txPackets, 5);
    assert.equal(s.txBytes, sent.reduce((a, f) => a + f.length, 0));
  },
});

Deno.test({
  name:
    "XdpLink sends a burst larger than its rings and the 32-frame kick budget, recycling completions",
  ignore: gate.ignore,
  async fn(): Promise<void> {
    gate.assert();
    await using lab = await Lab.up({ offloads: "off" });
    using link = XdpLink.open({ ifname: lab.nsmIf, ringSize: 64, handleSignals: false });
    const total = 600;
    await using cap = await PeerCapture.start(lab, "udp port 7778", total);
    const payload = new Uint8Array(18);
    let sent = 0;
    // Bounded but generous (a loaded machine may delay each 1 ms wait): normally ~0.1 s.
    const deadline = Date.now() + 30_000;
    while (sent < total && Date.now() < deadline) {
      const buf = link.transmitBuffer(60);
      if (buf === null) {
        link.flush(); // reclaims completions, kicks again
        await new Promise((r) => setTimeout(r, 1));
        continue;
      }
      new DataView(payload.buffer).setUint32(0, sent);
      writeUdpFrame(buf, {
        srcMac: lab.nsmMac,
        dstMac: lab.peerMac,
        srcIp: lab.nsmV4,
        dstIp: lab.peerV4,
        srcPort: 40000,
        dstPort: 7778,
        payload,
      });
      link.commit(60);
      sent++;
      if (sent % 100 === 0) link.flush();
    }
    for (let i = 0; i < 200; i++) {
      link.flush();
      await new Promise((r) => setTimeout(r, 1));
    }
    assert.equal(sent, total);
    const recs = await cap.records(30_000);
    assert.equal(recs.length, total, `every frame reached the peer; tcpdump: ${cap.log}`);
    const seqs = recs.map((r) => new DataView(r.data.buffer, r.data.byteOffset + 42).getUint32(0));
    assert.deepEqual(seqs, Array.from({ length: total }, (_, i) => i), "in order");
    const s = link.stats();
    assert.ok(s.txNoFrame > 0, "the 64 TX frames ran out and were recycled");
    assert.equal(s.ownershipViolations, 0);
  },
});

Deno.test({
  name: "XdpLink.close() detaches the program (ip link show has no xdp) and frees the queue",
  ignore: gate.ignore,
  async fn(): Promise<void> {
    gate.assert();
    await using lab = await Lab.up();
    const link = XdpLink.open({ ifname: lab.nsmIf, ringSize: 64, handleSignals: false });
    assert.ok(await lab.nsmHasXdp());
    link.close();
    link.close(); // idempotent
    assert.equal(await lab.nsmHasXdp(), false);
    // The rings are unmapped: the link must not touch them any more.
    assert.equal(link.receive(() => assert.fail("no frames after close"), 64), 0);
    assert.equal(link.transmitBuffer(60), null);
    link.commit(60);
    link.flush();
    assert.equal(await link.wait(1), false);
    // The queue is free again: a new link binds without EBUSY.
    using again = XdpLink.open({ ifname: lab.nsmIf, ringSize: 64, handleSignals: false });
    assert.ok(await lab.nsmHasXdp());
    again.close();
    assert.equal(await lab.nsmHasXdp(), false);
  },
});

Deno.test({
  name:
    "a second XdpLink on the same interface fails with XdpAlreadyAttachedError and leaves the first working",
  ignore: gate.ignore,
  async fn(): Promise<void> {
    gate.assert();
    await using lab = await Lab.up({ offloads: "off" });
    await lab.staticNeighbours();
    using first = XdpLink.open({ ifname: lab.nsmIf, ringSize: 64, handleSignals: false });
    assert.throws(
      () => XdpLink.open({ ifname: lab.nsmIf, ringSize: 64, handleSignals: false }),
      (e: unknown) => {
        assert.ok(e instanceof XdpAlreadyAttachedError, String(e));
        assert.match(e.message, /ip link set dev IFNAME xdp off/);
        return true;
      },
    );
    assert.ok(await lab.nsmHasXdp());
    const sender = lab.peer(pySend(lab, 9998, 3, "still"), true);
    const frames = await collect(
      first,
      (fs) => fs.filter((f) => udpPayloadTo(f, 9998) !== null).length >= 3,
      30_000, // returns as soon as the frames are in; generous for a loaded machine
    );
    await sender;
    assert.equal(frames.filter((f) => udpPayloadTo(f, 9998) !== null).length, 3);
  },
});

Deno.test({
  name: "XdpLink mode 'zerocopy' on veth falls back to copy and reports why",
  ignore: gate.ignore,
  async fn(): Promise<void> {
    gate.assert();
    await using lab = await Lab.up();
    const warnings: string[] = [];
    using link = XdpLink.open({
      ifname: lab.nsmIf,
      mode: "zerocopy",
      ringSize: 64,
      handleSignals: false,
      onWarning: (m) => warnings.push(m),
    });
    assert.equal(link.mode, "copy");
    assert.match(link.fallbackReason ?? "", /EOPNOTSUPP/);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /zero-copy unavailable, using copy mode/);
  },
});

Deno.test({
  name: "XdpLink opens one socket per queue on a 2-queue veth and receives on them",
  ignore: gate.ignore,
  async fn(): Promise<void> {
    gate.assert();
    await using lab = await Lab.up({ offloads: "off", queues: 2 });
    await lab.staticNeighbours();
    using link = XdpLink.open({
      ifname: lab.nsmIf,
      queues: 2,
      ringSize: 64,
      handleSignals: false,
    });
    assert.deepEqual(link.queueIds, [0, 1]);
    const sender = lab.peer(pySend(lab, 9997, 10, "mq"), true);
    const frames = await collect(
      link,
      (fs) => fs.filter((f) => udpPayloadTo(f, 9997) !== null).length >= 10,
      30_000, // returns as soon as the frames are in; generous for a loaded machine
    );
    await sender;
    assert.equal(frames.filter((f) => udpPayloadTo(f, 9997) !== null).length, 10);
  },
});

Deno.test({
  name: "XdpLink.open on a missing interface throws XdpNoDeviceError and attaches nothing",
  ignore: gate.ignore,
  async fn(): Promise<void> {
    gate.assert();
    const { XdpNoDeviceError } = await import("../xdp/libc.ts");
    assert.throws(
      () => XdpLink.open({ ifname: "nsmnoexist0", handleSignals: false }),
      XdpNoDeviceError,
    );
  },
});

async function childWithLink(lab: Lab): Promise<Deno.ChildProcess> {
  const mod = new URL("../xdp/xdp_link.ts", import.meta.url).href;
  const code = `import { XdpLink } from "${mod}";\n` +
    `const link = XdpLink.open({ ifname: "${lab.nsmIf}", ringSize: 64 });\n` +
    `console.log("ready " + link.mode);\n` +
    // Keep the event loop alive without busy-waiting; bounded to 30 s.
    `setTimeout(() => {}, 30000);\n`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.getReader();
  let text = "";
  const deadline = Date.now() + 15000;
  while (!text.includes("ready") && Date.now() < deadline) {
    const r = await reader.read();
    if (r.done) break;
    text += new TextDecoder().decode(r.value);
  }
  reader.releaseLock();
  assert.match(text, /ready copy/);
  return child;
}

for (const [signal, code] of [["SIGTERM", 143], ["SIGINT", 130]] as const) {
  Deno.test({
    name: `a process holding an XdpLink detaches it and exits ${code} on ${signal}`,
    ignore: gate.ignore,
    async fn(): Promise<void> {
      gate.assert();
      await using lab = await Lab.up();
      const child = await childWithLink(lab);
      try {
        assert.ok(await lab.nsmHasXdp());
        child.kill(signal);
        const status = await child.status;
        assert.equal(status.code, code);
        // signal null: the process exited itself (our handler closed the link and called
        // Deno.exit) rather than being killed by the signal's default action.
        assert.equal(status.signal, null);
        assert.equal(await lab.nsmHasXdp(), false);
      } finally {
        try {
          child.kill("SIGKILL");
        } catch { /* exited */ }
        await child.status;
        await child.stdout.cancel().catch(() => {});
        await child.stderr.cancel().catch(() => {});
      }
    },
  });
}

Deno.test({
  name:
    "a process killed with SIGKILL leaves no XDP program behind (the BPF link dies with its fd)",
  ignore: gate.ignore,
  async fn(): Promise<void> {
    gate.assert();
    await using lab = await Lab.up();
    const child = await childWithLink(lab);
    assert.ok(await lab.nsmHasXdp());
    child.kill("SIGKILL");
    await child.status;
    await child.stdout.cancel().catch(() => {});
    await child.stderr.cancel().catch(() => {});
    // The kernel releases the link when the last fd closes; allow it a moment.
    let attached = true;
    for (let i = 0; i < 50 && attached; i++) {
      attached = await lab.nsmHasXdp();
      if (attached) await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(attached, false);
    // And the queue can be bound again.
    using link = XdpLink.open({ ifname: lab.nsmIf, ringSize: 64, handleSignals: false });
    assert.equal(link.closed, false);
  },
});

Deno.test({
  name: "XdpLink with attachMode 'native' on veth receives the peer's frames",
  ignore: gate.ignore,
  async fn(): Promise<void> {
    gate.assert();
    await using lab = await Lab.up({ offloads: "off" });
    await lab.staticNeighbours();
    using link = XdpLink.open({
      ifname: lab.nsmIf,
      attachMode: "native",
      ringSize: 64,
      handleSignals: false,
    });
    assert.equal(link.attachMode, "native");
    const r = await lab.nsm(["ip", "link", "show", lab.nsmIf]);
    assert.match(r.stdout, /xdp[^g]/, "native attach shows 'xdp', not 'xdpgeneric'");
    const sender = lab.peer(pySend(lab, 9996, 5, "native"), true);
    const frames = await collect(
      link,
      (fs) => fs.filter((f) => udpPayloadTo(f, 9996) !== null).length >= 5,
      30_000, // returns as soon as the frames are in; generous for a loaded machine
    );
    await sender;
    assert.equal(frames.filter((f) => udpPayloadTo(f, 9996) !== null).length, 5);
  },
});
