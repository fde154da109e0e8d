// Every LogStore implementation runs the one conformance suite: one line each.
import { logStoreConformance } from './conformance.ts'
import { levelHarness, memoryHarness } from './harnesses.ts'

logStoreConformance('MemoryLogStore', memoryHarness)
logStoreConformance('LevelLogStore', levelHarness)
