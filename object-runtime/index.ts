// Public entry of the object runtime. Objects (objects/) and applications import from
// here only.

export { connect, Runtime, streamOf, validateRuntimeConfig } from './runtime.ts'
export type { AnyObjectDefinition, ConnectOptions, RuntimeConfig, RuntimeStats } from './runtime.ts'

export { defineObject, conflictKeysOf, isObjectDefinition, RESERVED_NAMES, WHOLE_OBJECT } from './define.ts'
export type {
  AccessorFn,
  AccessorMethod,
  ConflictKey,
  ConflictKeysOf,
  Consistency,
  DefinitionSource,
  MutatorFn,
  MutatorMethod,
  ObjectDefinition,
  ObjectHandle,
  ObjectMeta,
  ObjectSpec,
  OpArgs,
  ReadOptions,
  ReservedName,
  StateOf,
} from './define.ts'

export { currentEntry } from './object-core.ts'
export type { EntryContext, StateMode } from './object-core.ts'

export { OBJECT_ERROR_CODES, ObjectError, ObjectPoisonedError } from './errors.ts'
export type { ObjectErrorCode, PoisonedOp } from './errors.ts'

export { LOG_ERROR_CODES, LogError, isLogError, isValidStreamName } from './log-client.ts'
export type {
  AppendEntry,
  AppendOptions,
  ConflictDetails,
  ReadDependency,
  EntriesListener,
  LogClient,
  LogEntry,
  LogErrorCode,
  ReadRange,
  ReadResult,
  Subscription,
  SubscriptionErrorListener,
  TailResult,
} from './log-client.ts'

export { MemoryLog, MemoryLogClient } from './memory-log.ts'
export type { AppendFaultMode, MemoryLogClientCalls, MemoryLogClientOptions, MemoryLogOptions } from './memory-log.ts'

export { AppendBatcher, DEFAULT_APPEND_BATCHER_CONFIG, validateAppendBatcherConfig } from './append-batcher.ts'
export type { AppendBatcherConfig, AppendBatcherStats, AppendRequestId, SendBatch } from './append-batcher.ts'

export { encodeOp, decodeRecord, RECORD_OP } from './op-codec.ts'
export type { DecodedRecord, OpRecord } from './op-codec.ts'

export { stateHash } from './state-hash.ts'
export { BTree, isBTree, isPersistentRoot } from './persistent.ts'
export { PMap, isPMap } from './pmap.ts'
export type { PMapKey } from './pmap.ts'
export { Snapshot, TransactionAborted } from './transaction.ts'
export type { TransactionOptions } from './transaction.ts'

export { DEFAULT_CHECKPOINT_POLICY, RECORD_CHECKPOINT, checkpointDataStream, checkpointIndexStream, validateCheckpointPolicy } from './checkpoint.ts'
export type { CheckpointInfo, CheckpointPolicy, CheckpointResult, CheckpointStage, WriteOptions as CheckpointWriteOptions } from './checkpoint.ts'
export { STATE_FORMAT_VERSION, decodeState, encodeState } from './checkpoint-format.ts'
