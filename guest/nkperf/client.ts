/**
 * The nkperf client (`nkperf -c HOST`): drives one iperf3-protocol test against an iperf3 or
 * nkperf server over an injected `NetApi`, and returns the iperf3-shaped JSON report.
 *
 * @module
 */

import { type Instant, monotonicNow } from "../../stacks/time.ts";
import { DataPhase, IntervalClock, startRun } from "./data.ts";
import { denoNet, type NetApi, type NetConn } from "./net.ts";
import {
  ControlReader,
  DEFAULT_BLOCK_LEN,
  DEFAULT_PORT,
  encodeCookie,
  encodeJsonFrame,
  makeCookie,
  MAX_PARALLEL,
  paramsToJson,
  ProtocolError,
  resultsFromJson,
  resultsToJson,
  ServerRefusedError,
  State,
  stateName,
  streamId,
  type TestParams,
  type TestResults,
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

/** Options of `runClient`; everything but `host` has iperf3's default. */
export interface ClientOptions {
  /** Server host name or address. */
  readonly host: string;
  /** Server port (default 5201). */
  readonly port?: number;
  /** Test length in seconds (-t, default 10). */
  readonly time?: number;
  /** Parallel streams (-P, default 1). */
  readonly parallel?: number;
  /** Reverse: the server sends (-R). */
  readonly reverse?: boolean;
  /** Seconds to leave out at the start (-O, default 0). */
  readonly omit?: number;
  /** Block length in bytes (-l, default 128 KiB). */
  readonly len?: number;
  /** Seconds between interval reports (-i, default 1; 0 = none). */
  readonly intervalSec?: number;
  /** The network to use (default Deno's sockets). */
  readonly net?: NetApi;
  /** Monotonic clock (default `monotonicNow`). */
  readonly clock?: () => Instant;
  /** Wall clock in ms for `start.timestamp` (default Date.now). */
  readonly wallClock?: () => number;
  /** Receives text lines as iperf3 would print them (interval lines live); omit for silence. */
  readonly onText?: (line: string) => void;
  /** Abort when the test has not finished this many seconds after its planned end (30). */
  readonly slackSec?: number;
}

/** A client option is out of range. */
export class ClientOptionError extends RangeError {
  /** Builds the error; the message names the option and its range. */
  constructor(message: string) {
    super(message);
    this.name = "ClientOptionError";
  }
}

/** The test did not finish in time; the peer stopped answering. */
export class TestTimeoutError extends Error {
  /** Builds the error for a test that should have ended after `seconds`. */
  constructor(seconds: number) {
    super(
      `the test did not finish within ${seconds} s; check that the server is alive and reachable`,
    );
    this.name = "TestTimeoutError";
  }
}

function validate(o: ClientOptions): TestParams {
  const time = o.time ?? 10;
  const parallel = o.parallel ?? 1;
  const len = o.len ?? DEFAULT_BLOCK_LEN;
  if (!(time > 0 && time <= 86400)) throw new ClientOptionError("-t must be in (0, 86400] s");
  if (!Number.isInteger(parallel) || parallel < 1 || parallel > MAX_PARALLEL) {
    throw new ClientOptionError(`-P must be an integer in 1..${MAX_PARALLEL}`);
  }
  if (!Number.isInteger(len) || len < 1 || len > 1 << 24) {
    throw new ClientOptionError("-l must be an integer in 1..16777216 bytes");
  }
  if ((o.intervalSec ?? 1) < 0) throw new ClientOptionError("-i must be >= 0");
  const omit = o.omit ?? 0;
  if (!(omit >= 0 && omit <= 600)) throw new ClientOptionError("-O must be in [0, 600] s");
  return {
    time,
    parallel,
    len,
    reverse: o.reverse ?? false,
    omit,
    num: 0,
    blockcount: 0,
    clientVersion: NKPERF_VERSION,
  };
}

/**
 * Runs one test as the client and returns the report in iperf3's -J shape. Throws
 * `ServerRefusedError` when the server denies or aborts, `ProtocolError` on a broken
 * exchange, `TestTimeoutError` when the server stops answering.
 */
export async function runClient(opts: ClientOptions): Promise<Json> {
  const params = validate(opts);
  const net = opts.net ?? denoNet;
  const clock = opts.clock ?? monotonicNow;
  const wall = opts.wallClock ?? Date.now;
  const port = opts.port ?? DEFAULT_PORT;
  const intervalSec = opts.intervalSec ?? 1;
  const text = opts.onText;
  const isSender = !params.reverse;
  const cookie = makeCookie();
  const startedWall = wall();

  text?.(`Connecting to host ${opts.host}, port ${port}`);
  if (params.reverse) text?.(`Reverse mode, remote host ${opts.host} is sending`);
  const ctrl = await net.connect({ hostname: opts.host, port });
  ctrl.setNoDelay?.(true);
  const reader = new ControlReader(ctrl);
  const counters: StreamCounter[] = [];
  let phase: DataPhase | undefined;
  let timeline: IntervalClock | undefined;
  let endTimer: ReturnType<typeof setTimeout> | undefined;
  let ending: Promise<void> | undefined;
  let cpu0 = cpuMark(clock());
  let local: TestResults | undefined;
  let peer: TestResults | undefined;
  let timedOut = false;
  const budget = params.omit + params.time + (opts.slackSec ?? 30);
  const watchdog = setTimeout(() => {
    timedOut = true;
    closeQuietly(ctrl);
    for (const c of counters) closeQuietly(c.conn);
  }, budget * 1000);

  const endTest = async (): Promise<void> => {
    const now = clock();
    timeline?.finish(now);
    await phase?.stop(now, 2000);
    await writeState(ctrl, State.TEST_END);
  };

  try {
    await writeAll(ctrl, encodeCookie(cookie));
    for (;;) {
      const state = await reader.readState();
      if (state === State.PARAM_EXCHANGE) {
        await writeAll(ctrl, encodeJsonFrame(paramsToJson(params, NKPERF_VERSION)));
      } else if (state === State.CREATE_STREAMS) {
        for (let i = 0; i < params.parallel; i++) {
          const conn: NetConn = await net.connect({ hostname: opts.host, port });
          const c = new StreamCounter(streamId(i), conn);
          counters.push(c);
          await writeAll(conn, encodeCookie(cookie));
          text?.(`${label(c.id)} ${describeConn(conn)}`);
        }
        phase = new DataPhase(counters, isSender, params.len, clock);
      } else if (state === State.TEST_START) {
        // Nothing to do: TEST_RUNNING follows at once.
      } else if (state === State.TEST_RUNNING) {
        if (phase === undefined) {
          throw new ProtocolError("unexpected-state", "TEST_RUNNING before CREATE_STREAMS");
        }
        const now = clock();
        cpu0 = cpuMark(now);
        timeline = startRun(
          phase,
          {
            streams: counters,
            isSender,
            net,
            clock,
            intervalSec,
            omitSec: params.omit,
            durationSec: params.time,
          },
          now,
          text,
        );
        endTimer = setTimeout(() => {
          ending = endTest();
          ending.catch(() => {}); // surfaced when awaited at EXCHANGE_RESULTS
        }, (params.omit + params.time) * 1000);
      } else if (state === State.EXCHANGE_RESULTS) {
        if (phase === undefined) {
          throw new ProtocolError("unexpected-state", "EXCHANGE_RESULTS before the test ran");
        }
        clearTimeout(endTimer);
        if (ending === undefined) {
          // The server ended the test first (e.g. its own limit): stop without TEST_END.
          const now = clock();
          timeline?.finish(now);
          await phase.stop(now, 2000);
        } else await ending;
        await phase.closeAll();
        const t0 = timeline?.t0 ?? 0;
        local = localResults(counters, isSender, t0, cpuPercent(cpu0, cpuMark(clock())), net);
        await writeAll(ctrl, encodeJsonFrame(resultsToJson(local)));
        const r = resultsFromJson(await reader.readJson());
        if (r instanceof ProtocolError) throw r;
        peer = r;
      } else if (state === State.DISPLAY_RESULTS) {
        await writeState(ctrl, State.IPERF_DONE);
        break;
      } else if (state === State.SERVER_ERROR) {
        const b = await reader.readExact(8);
        const v = new DataView(b.buffer, b.byteOffset, 8);
        throw new ServerRefusedError(state, [v.getInt32(0), v.getInt32(4)]);
      } else if (
        state === State.ACCESS_DENIED || state === State.SERVER_TERMINATE
      ) {
        throw new ServerRefusedError(state);
      } else {
        throw new ProtocolError(
          "unexpected-state",
          `the server sent ${stateName(state)}, which the client does not expect here`,
        );
      }
    }
  } catch (e) {
    if (timedOut) throw new TestTimeoutError(budget);
    if (!(e instanceof ServerRefusedError)) {
      // Best effort, as iperf3 does on an error: tell the server to give up on this test.
      await writeState(ctrl, State.CLIENT_TERMINATE).catch(() => {});
    }
    throw e;
  } finally {
    clearTimeout(watchdog);
    timeline?.cancel();
    clearTimeout(endTimer);
    await phase?.closeAll();
    closeQuietly(ctrl);
  }
  if (local === undefined || peer === undefined) {
    throw new ProtocolError("unexpected-state", "DISPLAY_RESULTS before EXCHANGE_RESULTS");
  }
  const end = endJson({
    isSender,
    local,
    peer,
    streams: counters,
    haveTcpInfo: net.tcpInfo !== undefined,
  });
  for (const l of endLines(end)) text?.(l);
  text?.("");
  text?.("iperf Done.");
  return {
    start: {
      connected: connectedJson(counters),
      version: NKPERF_VERSION,
      system_info: systemInfo(),
      timestamp: timestampJson(startedWall),
      connecting_to: { host: opts.host, port },
      cookie,
      tcp_mss_default: 0,
      target_bitrate: 0,
      sock_bufsize: 0,
      sndbuf_actual: 0,
      rcvbuf_actual: 0,
      test_start: testStartJson(params),
    },
    intervals: timeline?.intervals ?? [],
    end,
  };
}

/** "[  1]" label of a stream id. */
export function label(id: number): string {
  return `[${String(id).padStart(3)}]`;
}

/** "local A port P connected to B port Q". */
export function describeConn(c: NetConn): string {
  const a = (x: Deno.Addr): string =>
    "hostname" in x ? `${x.hostname} port ${x.port}` : String(x.transport);
  return `local ${a(c.localAddr)} connected to ${a(c.remoteAddr)}`;
}

/** Closes `c`, ignoring "already closed". */
export function closeQuietly(c: NetConn): void {
  try {
    c.close();
  } catch {
    // Already closed.
  }
}
