import assert from "node:assert/strict";
import { memoryNet, type NetConn } from "./net.ts";
import {
  ControlReader,
  COOKIE_ALPHABET,
  COOKIE_SIZE,
  decodeCookie,
  decodeJsonBody,
  decodeJsonFrameLength,
  decodeState,
  encodeCookie,
  encodeJsonFrame,
  encodeServerError,
  encodeState,
  makeCookie,
  paramsFromJson,
  paramsToJson,
  ProtocolError,
  resultsFromJson,
  resultsToJson,
  State,
  stateName,
  streamId,
  writeAll,
} from "./protocol.ts";

// Bytes seen on the wire from iperf 3.12 (tcpdump -A in a namespace), used as golden values.
const IPERF3_PARAMS =
  '{"tcp":true,"omit":0,"time":1,"num":0,"blockcount":0,"parallel":2,"len":1000,' +
  '"pacing_timer":1000,"client_version":"3.12"}';
const IPERF3_RECEIVER_RESULTS = '{"cpu_util_total":38.1,"cpu_util_user":0,"cpu_util_system":38.1,' +
  '"sender_has_retransmits":18446744073709551615,"congestion_used":"bbr","streams":[' +
  '{"id":1,"bytes":1264189440,"retransmits":18446744073709551615,"jitter":0,"errors":0,' +
  '"packets":0,"start_time":0,"end_time":1.000855},{"id":3,"bytes":1248460800,' +
  '"retransmits":18446744073709551615,"jitter":0,"errors":0,"packets":0,"start_time":0,' +
  '"end_time":1.000857}]}';

Deno.test("state bytes: values match iperf3's wire bytes and negatives sign-extend", () => {
  assert.equal(encodeState(State.PARAM_EXCHANGE), 0x09);
  assert.equal(encodeState(State.CREATE_STREAMS), 0x0a);
  assert.equal(encodeState(State.TEST_START), 0x01);
  assert.equal(encodeState(State.TEST_RUNNING), 0x02);
  assert.equal(encodeState(State.TEST_END), 0x04);
  assert.equal(encodeState(State.EXCHANGE_RESULTS), 0x0d);
  assert.equal(encodeState(State.DISPLAY_RESULTS), 0x0e);
  assert.equal(encodeState(State.IPERF_DONE), 0x10);
  assert.equal(encodeState(State.ACCESS_DENIED), 0xff);
  assert.equal(encodeState(State.SERVER_ERROR), 0xfe);
  assert.equal(decodeState(0xff), State.ACCESS_DENIED);
  assert.equal(decodeState(0xfe), State.SERVER_ERROR);
  assert.equal(decodeState(0x0c), State.CLIENT_TERMINATE);
  assert.equal(stateName(11), "SERVER_TERMINATE");
  assert.equal(stateName(99), "UNKNOWN(99)");
  assert.throws(() => encodeState(200), RangeError);
});

Deno.test("makeCookie() draws 36 characters from iperf3's alphabet; encode adds the NUL", () => {
  let i = 0;
  const c = makeCookie((out) => out.forEach((_, j) => (out[j] = i++)));
  assert.equal(c.length, 36);
  assert.equal(c.slice(0, 32), COOKIE_ALPHABET);
  for (const ch of makeCookie()) assert.ok(COOKIE_ALPHABET.includes(ch));
  const wire = encodeCookie(c);
  assert.equal(wire.length, COOKIE_SIZE);
  assert.equal(wire[36], 0);
  assert.equal(decodeCookie(wire), c);
});

Deno.test("decodeCookie() rejects a missing NUL or control bytes with reason 'bad-cookie'", () => {
  const wire = encodeCookie("wbd7yeyx7tjangi36v2egxk3zm5324btqf2r");
  const noNul = wire.slice();
  noNul[36] = 0x41;
  const r1 = decodeCookie(noNul);
  assert.ok(r1 instanceof ProtocolError && r1.reason === "bad-cookie");
  const ctl = wire.slice();
  ctl[3] = 0x0a;
  const r2 = decodeCookie(ctl);
  assert.ok(r2 instanceof ProtocolError && r2.reason === "bad-cookie");
  assert.ok(decodeCookie(wire.subarray(0, 36)) instanceof ProtocolError);
  assert.throws(() => encodeCookie("short"), RangeError);
});

Deno.test("encodeJsonFrame() writes a u32 big-endian length then the JSON bytes", () => {
  const f = encodeJsonFrame({ a: 1 });
  assert.deepEqual([...f.subarray(0, 4)], [0, 0, 0, 7]);
  assert.equal(new TextDecoder().decode(f.subarray(4)), '{"a":1}');
  assert.equal(decodeJsonFrameLength(f), 7);
  const big = decodeJsonFrameLength(Uint8Array.of(0x7f, 0, 0, 0));
  assert.ok(big instanceof ProtocolError && big.reason === "frame-too-long");
  const arr = decodeJsonBody(new TextEncoder().encode("[1]"));
  assert.ok(arr instanceof ProtocolError && arr.reason === "bad-json");
  const bad = decodeJsonBody(Uint8Array.of(0xff, 0xfe));
  assert.ok(bad instanceof ProtocolError && bad.reason === "bad-json");
});

Deno.test("paramsToJson() produces iperf 3.12's parameter object byte for byte", () => {
  const p = paramsFromJson(JSON.parse(IPERF3_PARAMS));
  assert.ok(!(p instanceof ProtocolError));
  assert.equal(p.parallel, 2);
  assert.equal(p.len, 1000);
  assert.equal(p.time, 1);
  assert.equal(p.reverse, false);
  assert.equal(p.clientVersion, "3.12");
  assert.equal(JSON.stringify(paramsToJson(p, "3.12")), IPERF3_PARAMS);
  const r = paramsToJson({ ...p, reverse: true }, "3.12");
  assert.equal(
    JSON.stringify(r),
    '{"tcp":true,"omit":0,"time":1,"num":0,"blockcount":0,"parallel":2,"reverse":true,' +
      '"len":1000,"pacing_timer":1000,"client_version":"3.12"}',
  );
});

Deno.test("paramsFromJson() rejects UDP as 'unsupported' and bad -P/-l as 'bad-params'", () => {
  const udp = paramsFromJson({ udp: true, time: 1 });
  assert.ok(udp instanceof ProtocolError && udp.reason === "unsupported");
  const bidir = paramsFromJson({ tcp: true, bidirectional: true });
  assert.ok(bidir instanceof ProtocolError && bidir.reason === "unsupported");
  for (const bad of [{ parallel: 0 }, { parallel: 129 }, { len: 0 }, { time: "x" }]) {
    const r = paramsFromJson({ tcp: true, ...bad });
    assert.ok(r instanceof ProtocolError && r.reason === "bad-params", JSON.stringify(bad));
  }
});

Deno.test("resultsFromJson() reads iperf 3.12's receiver results, 2^64-1 meaning -1", () => {
  const r = resultsFromJson(JSON.parse(IPERF3_RECEIVER_RESULTS));
  assert.ok(!(r instanceof ProtocolError));
  assert.equal(r.senderHasRetransmits, -1);
  assert.equal(r.congestion, "bbr");
  assert.deepEqual(r.streams.map((s) => [s.id, s.bytes, s.retransmits, s.endTime]), [
    [1, 1264189440, -1, 1.000855],
    [3, 1248460800, -1, 1.000857],
  ]);
  // Round trip keeps the keys iperf3 reads.
  const again = resultsFromJson(JSON.parse(JSON.stringify(resultsToJson(r))));
  assert.deepEqual(again, r);
  const bad = resultsFromJson({ streams: [{ id: "x" }] });
  assert.ok(bad instanceof ProtocolError && bad.reason === "bad-results");
});

Deno.test("streamId() numbers streams 1, 3, 4, 5 as iperf 3.12 does", () => {
  assert.deepEqual([0, 1, 2, 3].map(streamId), [1, 3, 4, 5]);
});

Deno.test("encodeServerError() is 0xfe then two big-endian i32s", () => {
  assert.deepEqual([...encodeServerError(10, -1)], [0xfe, 0, 0, 0, 10, 0xff, 0xff, 0xff, 0xff]);
});

Deno.test("ControlReader reassembles states, cookies and JSON split across reads", async () => {
  const net = memoryNet(7); // tiny pipe: every message arrives in pieces
  const l = net.listen({ port: 1 });
  const client = await net.connect({ hostname: "x", port: 1 });
  const server: NetConn = await l.accept();
  const cookie = makeCookie();
  const msgs = new Uint8Array([
    ...encodeCookie(cookie),
    encodeState(State.PARAM_EXCHANGE),
    ...encodeJsonFrame({ hello: "world", n: [1, 2, 3] }),
    encodeState(State.ACCESS_DENIED),
  ]);
  const writing = writeAll(client, msgs);
  const r = new ControlReader(server);
  assert.equal(await r.readCookie(), cookie);
  assert.equal(await r.readState(), State.PARAM_EXCHANGE);
  assert.deepEqual(await r.readJson(), { hello: "world", n: [1, 2, 3] });
  assert.equal(await r.readState(), State.ACCESS_DENIED);
  await writing;
  client.close();
  await assert.rejects(r.readState(), (e: unknown) => {
    return e instanceof ProtocolError && e.reason === "unexpected-eof";
  });
  l.close();
});
