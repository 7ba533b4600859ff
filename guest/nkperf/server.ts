/**
 * The nkperf server (`nkperf -s`): accepts iperf3-protocol tests from iperf3 or nkperf clients
 * over an injected `NetApi`, one test at a time (a second client gets ACCESS_DENIED, as from
 * iperf3), and reports each test in iperf3's -J shape.
 *
 * Connections are told apart by their cookie: the first 37 bytes of every connection. A cookie
 * that matches the running test while it is creating streams makes a data stream; any other
 * connection during a test is denied; between tests it starts a new test.
 *
 * @module
 */

import { type Instant, monotonicNow } from "../../stacks/time.ts";
import { closeQuietly, describeConn, label } from "./client.ts";
import { DataPhase, startRun } from "./data.ts";
import { denoNet, type NetApi, type NetConn, type NetListener } from "./net.ts";
import {
  ControlReader,
  DEFAULT_PORT,
  encodeJsonFrame,
  encodeServerError,
  encodeState,
  paramsFromJson,
  ProtocolError,
  resultsFromJson,
  resultsToJson,
  State,
  stateName,
  streamId,
  type TestParams,
  writeAll,
  writeState,
} from "./protocol.ts";
import {
  connectedJson,
  cpuMark,
  cpuPercent,
  endJson,
  endLines,
  type Json,
  localResults,
  NKPERF_VERSION,
  StreamCounter,
  systemInfo,
  testStartJson,
  timestampJson,
} from "./report.ts";

/** How long a new connection may take to send its cookie. */
const COOKIE_TIMEOUT_MS = 10_000;
/** How long the client may take to open all data streams after CREATE_STREAMS. */
const STREAMS_TIMEOUT_MS = 10_000;

/** Options of `NkperfServer.listen`. */
export interface ServerOptions {
  /** Port to listen on (default 5201; 0 = any free port, see `addr`). */
  readonly port?: number;
  /** Address to bind (default all). */
  readonly hostname?: string;
  /** Serve one test, then stop (-1). */
  readonly oneOff?: boolean;
  /** Seconds between interval reports (-i, default 1; 0 = none). */
  readonly intervalSec?: number;
  /** The network to use (default Deno's sockets). */
  readonly net?: NetApi;
  /** Monotonic clock (default `monotonicNow`). */
  readonly clock?: () => Instant;
  /** Wall clock in ms for `start.timestamp` (default Date.now). */
  readonly wallClock?: () => number;
  /** Receives text lines as iperf3 -s would print them; omit for silence. */
  readonly onText?: (line: string) => void;
  /** Receives each finished test's report (iperf3 -J shape), or `{error}` for a failed one. */
  readonly onReport?: (report: Json) => void;
  /** Abort a test this many seconds after its planned end (30). */
  readonly slackSec?: number;
}

interface PendingTest {
  readonly cookie: string;
  wanted: number;
  readonly streams: StreamCounter[];
  allConnected: (() => void) | undefined;
}

/** A running nkperf server. */
export class NkperfServer {
  readonly #listener: NetListener;
  readonly #opts: ServerOptions;
  readonly #net: NetApi;
  readonly #clock: () => Instant;
  #test: PendingTest | undefined;
  #closed = false;
  /**
   * Resolves when the server stops (after one test with `oneOff`, or on `close()`); rejects
   * when it could not listen (its listener's `ready` rejected: a port in use through GuestLib).
   */
  readonly done: Promise<void>;

  private constructor(listener: NetListener, opts: ServerOptions) {
    this.#listener = listener;
    this.#opts = opts;
    this.#net = opts.net ?? denoNet;
    this.#clock = opts.clock ?? monotonicNow;
    this.done = this.#acceptLoop();
    this.done.catch(() => {}); // for whoever awaits it: no unhandled rejection otherwise
  }

  /** Starts listening; tests are served in the background until `done`. */
  static listen(opts: ServerOptions = {}): NkperfServer {
    const net = opts.net ?? denoNet;
    const listen: { port: number; hostname?: string } = { port: opts.port ?? DEFAULT_PORT };
    if (opts.hostname !== undefined) listen.hostname = opts.hostname;
    return new NkperfServer(net.listen(listen), opts);
  }

  /** The bound address (useful with port 0). */
  get addr(): Deno.Addr {
    return this.#listener.addr;
  }

  /** Stops accepting; a running test is left to finish. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeListener(this.#listener);
  }

  async #acceptLoop(): Promise<void> {
    const text = this.#opts.onText;
    // "Server listening" only once it is: a client started on that line must not be refused
    // (through GuestLib the NSM listens a few microseconds after listen() returned).
    try {
      await this.#listener.ready;
    } catch (e) {
      this.close();
      throw e;
    }
    text?.("-----------------------------------------------------------");
    const a = this.#listener.addr;
    text?.(`Server listening on ${"port" in a ? a.port : DEFAULT_PORT}`);
    text?.("-----------------------------------------------------------");
    const tests: Promise<void>[] = [];
    while (!this.#closed) {
      let conn: NetConn;
      try {
        conn = await this.#listener.accept();
      } catch {
        break; // closed
      }
      const t = this.#route(conn).catch(() => {});
      tests.push(t);
      if (tests.length > 64) tests.splice(0, tests.length - 64);
    }
    await Promise.allSettled(tests);
  }

  // Reads the cookie and decides what the connection is.
  async #route(conn: NetConn): Promise<void> {
    const reader = new ControlReader(conn);
    const timer = setTimeout(() => closeQuietly(conn), COOKIE_TIMEOUT_MS);
    let cookie: string;
    try {
      cookie = await reader.readCookie();
    } catch {
      closeQuietly(conn);
      return;
    } finally {
      clearTimeout(timer);
    }
    const t = this.#test;
    if (t !== undefined) {
      if (cookie === t.cookie && t.streams.length < t.wanted) {
        t.streams.push(new StreamCounter(streamId(t.streams.length), conn));
        if (t.streams.length === t.wanted) t.allConnected?.();
        return;
      }
      await writeAll(conn, Uint8Array.of(encodeState(State.ACCESS_DENIED))).catch(() => {});
      closeQuietly(conn);
      return;
    }
    if (this.#closed) {
      closeQuietly(conn);
      return;
    }
    const test: PendingTest = { cookie, wanted: 0, streams: [], allConnected: undefined };
    this.#test = test;
    try {
      const report = await this.#runTest(conn, reader, test);
      this.#opts.onReport?.(report);
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      this.#opts.onText?.(`nkperf: error - ${msg}`);
      this.#opts.onReport?.({ error: msg });
    } finally {
      for (const s of test.streams) closeQuietly(s.conn);
      closeQuietly(conn);
      this.#test = undefined;
      if (this.#opts.oneOff) this.close();
    }
  }

  async #runTest(ctrl: NetConn, reader: ControlReader, test: PendingTest): Promise<Json> {
    const opts = this.#opts;
    const net = this.#net;
    const clock = this.#clock;
    const text = opts.onText;
    const intervalSec = opts.intervalSec ?? 1;
    const startedWall = (opts.wallClock ?? Date.now)();
    ctrl.setNoDelay?.(true);
    text?.(`Accepted connection from ${peerText(ctrl)}`);

    await writeState(ctrl, State.PARAM_EXCHANGE);
    const p = paramsFromJson(await reader.readJson());
    if (p instanceof ProtocolError) {
      await writeAll(ctrl, encodeServerError(p.iperfErrno, 0)).catch(() => {});
      throw p;
    }
    const params: TestParams = p;
    const isSender = params.reverse;

    test.wanted = params.parallel;
    const connected = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), STREAMS_TIMEOUT_MS);
      test.allConnected = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
    });
    await writeState(ctrl, State.CREATE_STREAMS);
    if (!(await connected)) {
      throw new ProtocolError(
        "streams-timeout",
        `the client opened ${test.streams.length} of ${params.parallel} data streams in ${
          STREAMS_TIMEOUT_MS / 1000
        } s`,
      );
    }
    for (const s of test.streams) text?.(`${label(s.id)} ${describeConn(s.conn)}`);

    const phase = new DataPhase(test.streams, isSender, params.len, clock);
    await writeState(ctrl, State.TEST_START);
    await writeState(ctrl, State.TEST_RUNNING);
    const started = clock();
    const cpu0 = cpuMark(started);
    // The client decides when the test ends, so ticks run until TEST_END.
    const timeline = startRun(
      phase,
      {
        streams: test.streams,
        isSender,
        net,
        clock,
        intervalSec,
        omitSec: params.omit,
        durationSec: Number.POSITIVE_INFINITY,
      },
      started,
      text,
    );
    const budget = params.omit + params.time + (opts.slackSec ?? 30);
    let timedOut = false;
    const watchdog = setTimeout(() => {
      timedOut = true;
      closeQuietly(ctrl);
    }, budget * 1000);
    try {
      // The client ends the test (TEST_END); anything else aborts it.
      const state = await reader.readState().catch((e) => {
        throw timedOut
          ? new ProtocolError("timeout", `no TEST_END within ${budget} s; the client is gone`)
          : e;
      });
      const now = clock();
      timeline.finish(now);
      await phase.stop(now, 0);
      await phase.closeAll();
      if (state !== State.TEST_END) {
        throw new ProtocolError(
          "client-terminated",
          `the client sent ${stateName(state)} instead of TEST_END; the test was abandoned`,
        );
      }
      const cpu = cpuPercent(cpu0, cpuMark(now));
      const local = localResults(test.streams, isSender, timeline.t0, cpu, net);
      await writeState(ctrl, State.EXCHANGE_RESULTS);
      const peer = resultsFromJson(await reader.readJson());
      if (peer instanceof ProtocolError) throw peer;
      await writeAll(ctrl, encodeJsonFrame(resultsToJson(local)));
      await writeState(ctrl, State.DISPLAY_RESULTS);
      // IPERF_DONE (16) ends it; a client that just closes is fine too.
      await reader.readState().catch(() => State.IPERF_DONE);
      const end = endJson({
        isSender,
        local,
        peer,
        streams: test.streams,
        haveTcpInfo: net.tcpInfo !== undefined,
      });
      for (const l of endLines(end)) text?.(l);
      const peerAddr = ctrl.remoteAddr;
      return {
        start: {
          connected: connectedJson(test.streams),
          version: NKPERF_VERSION,
          system_info: systemInfo(),
          sock_bufsize: 0,
          sndbuf_actual: 0,
          rcvbuf_actual: 0,
          timestamp: timestampJson(startedWall),
          accepted_connection: "hostname" in peerAddr
            ? { host: peerAddr.hostname, port: peerAddr.port }
            : { host: "", port: 0 },
          cookie: test.cookie,
          tcp_mss_default: 0,
          target_bitrate: 0,
          test_start: testStartJson(params),
        },
        intervals: timeline.intervals,
        end,
      };
    } finally {
      clearTimeout(watchdog);
      timeline.cancel();
      await phase.closeAll();
    }
  }
}

function peerText(c: NetConn): string {
  const a = c.remoteAddr;
  return "hostname" in a ? `${a.hostname}, port ${a.port}` : String(a.transport);
}

function closeListener(l: NetListener): void {
  try {
    l.close();
  } catch {
    // Already closed.
  }
}
