// Built-in replicated objects. Each is written only against the public object-definition
// API (object-runtime/index.ts); see each file's header for its semantics and example.

export { Counter } from './counter.ts'
export { List } from './list.ts'
export { Lock } from './lock.ts'
export type { LockGrant, LockState, LockStatus } from './lock.ts'
export { QMap } from './qmap.ts'
export type { MapKey } from './qmap.ts'
export { QSet } from './qset.ts'
export type { SetMember } from './qset.ts'
export { Queue } from './queue.ts'
export { Register } from './register.ts'
export { SortedMap } from './sorted-map.ts'
export type { SortedKey } from './sorted-map.ts'
