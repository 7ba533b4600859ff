/**
 * nkperf: an iperf3-protocol throughput tool (client and server) over an injectable `NetApi`.
 *
 * @module
 */

export {
  ClientOptionError,
  type ClientOptions,
  closeQuietly,
  describeConn,
  runClient,
  TestTimeoutError,
} from "./client.ts";
export { type CliArgs, main, parseArgs, USAGE, UsageError } from "./cli.ts";
export { DataPhase } from "./data.ts";
export {
  ConnectionClosedError,
  ConnectionRefusedError,
  denoNet,
  memoryNet,
  type NetApi,
  type NetConn,
  type NetListener,
  type TcpInfoSample,
} from "./net.ts";
export {
  ControlReader,
  COOKIE_ALPHABET,
  COOKIE_SIZE,
  decodeCookie,
  decodeJsonBody,
  decodeJsonFrameLength,
  decodeState,
  DEFAULT_BLOCK_LEN,
  DEFAULT_PORT,
  encodeCookie,
  encodeJsonFrame,
  encodeServerError,
  encodeState,
  IperfErrno,
  makeCookie,
  MAX_JSON_FRAME,
  MAX_PARALLEL,
  paramsFromJson,
  paramsToJson,
  ProtocolError,
  resultsFromJson,
  resultsToJson,
  ServerRefusedError,
  State,
  stateName,
  type StateValue,
  streamId,
  type StreamResult,
  type TestParams,
  type TestResults,
  writeAll,
  writeState,
} from "./protocol.ts";
export {
  endJson,
  formatBytes,
  formatRate,
  IntervalMeter,
  type Json,
  NKPERF_VERSION,
  rebaseStreams,
  StreamCounter,
} from "./report.ts";
export { NkperfServer, type ServerOptions } from "./server.ts";
