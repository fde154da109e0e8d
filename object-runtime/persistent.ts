// Persistent (structurally shared) containers the runtime knows how to handle: PMap (ours),
// immutable.js collections and sorted-btree's BTree. All are class instances, which immer
// neither drafts nor freezes, so they can sit inside a drafted root without being copied;
// and each can be the whole state root, in which case playback skips immer (object-core.ts).

import { createRequire } from 'node:module'
import { isImmutable } from 'immutable'
import { isPMap } from './pmap.ts'
import type { Collection } from 'immutable'
import type * as btreeTypes from 'sorted-btree'

// sorted-btree is CommonJS with `exports.default`; Node's ESM loader, tsx and vitest
// disagree on what `import BTree from 'sorted-btree'` yields, require() does not.
const require = createRequire(import.meta.url)
// (Under NodeNext typing, the namespace's `default` is module.exports, hence `.default.default`.)
const btree = require('sorted-btree') as { default: typeof btreeTypes.default.default }

/** The BTree class of sorted-btree, loaded the same way under Node, tsx and vitest. */
export const BTree = btree.default
export type BTree<K, V> = import('sorted-btree').default<K, V>

export function isBTree(value: unknown): value is BTree<unknown, unknown> {
  return value instanceof (BTree as unknown as abstract new () => object)
}

/** An immutable.js collection that supports transient mutation (Map, List, Set, OrderedMap, ...). */
export type TransientCapable = Collection<unknown, unknown> & {
  asMutable(): TransientCapable
  asImmutable(): TransientCapable
}

export function isTransientCapable(value: unknown): value is TransientCapable {
  return isImmutable(value) && typeof (value as { asMutable?: unknown }).asMutable === 'function'
}

/** Whether a state root can use the persistent-root fast path (no immer). */
export function isPersistentRoot(value: unknown): boolean {
  return isPMap(value) || isTransientCapable(value) || isBTree(value)
}

/**
 * Starts a batch on a persistent root: returns a private working copy that mutators may
 * change in place. The snapshot passed in stays untouched (readers may hold it).
 * O(1): immutable.js copies nodes on first write (`asMutable`); BTree shares nodes
 * copy-on-write (`clone`).
 */
export function beginBatch<S>(root: S): S {
  if (isBTree(root)) return root.clone() as S
  if (isPMap(root)) return root.asMutable() as S
  return (root as unknown as TransientCapable).asMutable() as unknown as S
}

/**
 * Ends a batch: turns the working copy into the next immutable snapshot, in place, O(1)
 * (a PMap working copy that started empty first builds its trie in one O(n) pass, see
 * pmap.ts). An untouched working copy gives back the previous snapshot itself.
 */
export function endBatch<S>(work: S, previous: S): S {
  if (isBTree(work)) {
    work.freeze()
    return work
  }
  if (isPMap(work)) return (work.wasAltered() ? work.asImmutable() : previous) as S
  const transient = work as unknown as TransientCapable & { wasAltered(): boolean }
  if (!transient.wasAltered()) return previous
  return transient.asImmutable() as unknown as S
}
