/**
 * NK devices: the shared-memory transport between guests and the NSM (see nsm/README.md).
 *
 * @module
 */

export {
  DeviceConfigError,
  DeviceHeaderError,
  deviceLayout,
  DeviceState,
  GuestDevice,
  NK_HEADER_SIZE,
  NK_MAGIC,
  NK_VERSION_MAJOR,
  NK_VERSION_MINOR,
  NsmDevice,
  parseHeader,
  RING_ORDER,
} from "./device.ts";
export type {
  DeviceGeometry,
  DeviceLayout,
  GuestQueueSet,
  HeaderFault,
  NsmDeviceOptions,
  NsmQueueSet,
  ParsedHeader,
} from "./device.ts";
export { DATA_FAULTS, DataRegion, dataRegionBytes, DataRegionError } from "./data_region.ts";
export type { DataFault, DataRegionGeometry, DeviceSide } from "./data_region.ts";
export { NkOsError } from "./os_error.ts";
export {
  decodeNqe,
  encodeCompletion,
  encodeNqe,
  Nqe,
  NQE_SIZE,
  NqeEvent,
  NqeFamily,
  NqeFlag,
  NqeOp,
  nqeOpName,
} from "./nqe.ts";
export type { NqeOpCode } from "./nqe.ts";
export {
  initRing,
  ringBytes,
  RingConfigError,
  RingConsumer,
  RingIndexError,
  RingProducer,
  SLOT_SIZE,
  SLOT_WORDS,
} from "./ring.ts";
export type { RingFaultReason } from "./ring.ts";
export {
  heapSizingHint,
  NSM_INITIAL_OLD_SPACE_MB,
  NSM_SEMI_SPACE_MB,
  NSM_V8_FLAGS,
  youngGenerationBytes,
} from "./heap.ts";
export { hugePageInfo, SharedMemory, ShmConfigError } from "./shm.ts";
export type { HugePageInfo, HugePagePolicy, ShmBacking, ShmCreateOptions } from "./shm.ts";
export { Doorbell } from "./wake.ts";
export type { WakeReason } from "./wake.ts";
