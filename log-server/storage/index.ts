// The replica's storage layer: see log-store.ts for the interface and who calls what.
export type { CompactResult, LogEntry, LogStore, LogStoreStats, ReadRange, ReadResult, ReclaimedPrefix } from './log-store.ts'
export { CorruptionError, StorageError, TrimmedError, isStorageError, type StorageErrorCode } from './errors.ts'
export { DEFAULT_LOG_STORE_OPTIONS, validateLogStoreOptions, type LogStoreOptions } from './options.ts'
export { MemoryDisk, MemoryLogStore } from './memory-log-store.ts'
export { DEFAULT_LEVEL_OPTIONS, LevelLogStore, validateLevelLogStoreOptions, type LevelLogStoreOptions } from './level-log-store.ts'
export { crc32c } from './crc32c.ts'
export { recordEnd, storedCount, storedEntries, streamOffsets } from './entries.ts'
