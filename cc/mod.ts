/**
 * Congestion control as sandboxed WebAssembly modules: the host (`CcHost`, `WasmCc`), the
 * sandbox (validation, metering) and the build helper. See cc/README.md for the module ABI.
 *
 * @module
 */

export {
  CC_ABI_VERSION,
  CongestionArg,
  EVENT_EXPORTS,
  EVENT_RECORD_SIZE,
  EventKind,
  EvF,
  EvFlag,
  EvI,
  META_EXPORTS,
  ModuleFlag,
  OUTPUT_AREA_SIZE,
  StateArg,
} from "./abi.ts";
export {
  CcHost,
  CcModule,
  type CcSwapState,
  HostCounters,
  ViolationCounters,
  WasmCc,
} from "./host.ts";
export {
  CcInstance,
  CcLoadError,
  type CcModuleMeta,
  DEFAULT_LIMITS,
  type LoadRejectReason,
  type SandboxLimits,
  selfTest,
  validateCcModule,
  type ValidatedCcModule,
  Violation,
  VIOLATION_NAMES,
  type ViolationCode,
} from "./sandbox.ts";
export {
  exportedFuncType,
  FUEL_BUDGET_EXPORT,
  FUEL_EXPORT,
  type FuncType,
  instrumentFuel,
  type MemoryLimits,
  type MeteredModule,
  parseWasm,
  START_FUEL,
  type WasmExport,
  WasmFormatError,
  type WasmImport,
  type WasmInfo,
  type WasmSection,
} from "./meter.ts";
export {
  AS_MODULES,
  C_MODULES,
  CcBuildError,
  DIST_DIR,
  ensureBuilt,
  haveClang,
  modulePath,
} from "./build.ts";
