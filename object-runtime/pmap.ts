// PMap: a persistent hash map (a CHAMP trie: Steindorfer & Vinju, OOPSLA 2015) for
// string and number keys, built for replicated state:
//
// - Compact: keys and values sit inline in the node arrays (no object per entry), about
//   half the memory of an immutable.js Map (see README.md for measured figures).
// - Transient editing: `asMutable()` (O(1)) gives a copy that `set`/`delete` change in
//   place, copying a node only the first time it is touched; `asImmutable()` (O(1))
//   seals it. This is what lets the runtime apply a whole batch of ops cheaply while
//   older snapshots stay untouched.
// - Canonical: the trie's shape, hence the iteration order, depends only on the set of
//   keys, not on the history of inserts and deletes — two clients (or a client restored
//   from a checkpoint) iterate the same map in the same order.
// - Deterministic hashing (no per-process seed). Keys compare with ===, NaN equal to
//   itself; 1 and '1' are different keys.

export type PMapKey = string | number

/** Identity of one transient editing session. */
class Owner {}

class BNode {
  constructor(
    public datamap: number,
    public nodemap: number,
    /** [k0, v0, k1, v1, ..., child0, child1, ...], entries and children in bit order. */
    public arr: unknown[],
    public owner: Owner | null,
  ) {}
}

class CNode {
  constructor(
    public hash: number,
    /** [k0, v0, k1, v1, ...]: keys whose 32-bit hashes are all equal. */
    public arr: unknown[],
    public owner: Owner | null,
  ) {}
}

type TrieNode = BNode | CNode

const BITS = 5
const MASK = 31
const MAX_SHIFT = 30 // fragments at shifts 0, 5, ..., 30 use all 32 hash bits

const float = new Float64Array(1)
const floatWords = new Int32Array(float.buffer)

function fmix(h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h | 0
}

export function hashKey(key: PMapKey): number {
  if (typeof key === 'string') {
    let h = 0x811c9dc5
    for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193)
    return fmix(h ^ key.length)
  }
  if (Number.isInteger(key) && key >= -0x80000000 && key <= 0x7fffffff) return fmix((key | 0) ^ 0x5bd1e995)
  float[0] = key === 0 || key !== key ? (key === 0 ? 0 : NaN) : key
  return fmix(floatWords[0]! ^ fmix(floatWords[1]! ^ 0x27d4eb2f))
}

function keyEquals(a: unknown, b: unknown): boolean {
  return a === b || (a !== a && b !== b)
}

function popcount(x: number): number {
  x = x - ((x >>> 1) & 0x55555555)
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333)
  return (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24
}

/** Inserts two slots at `at` (in place). Faster than splice for the short arrays of trie nodes. */
function insertPair(arr: unknown[], at: number, a: unknown, b: unknown): void {
  const n = arr.length
  arr.push(a, b) // grow without holes
  for (let i = n - 1; i >= at; i--) arr[i + 2] = arr[i]
  arr[at] = a
  arr[at + 1] = b
}

/** Removes two slots at `at` (in place). */
function removePair(arr: unknown[], at: number): void {
  const n = arr.length - 2
  for (let i = at; i < n; i++) arr[i] = arr[i + 2]
  arr.pop()
  arr.pop()
}

/** Scratch result flags of one update (single-threaded: reset before each use). */
const change = { added: false, removed: false, changed: false }

function editable(node: BNode, owner: Owner | null): BNode {
  return owner !== null && node.owner === owner ? node : new BNode(node.datamap, node.nodemap, node.arr.slice(), owner)
}

function editableC(node: CNode, owner: Owner | null): CNode {
  return owner !== null && node.owner === owner ? node : new CNode(node.hash, node.arr.slice(), owner)
}

/** A total order on keys, for the entries of collision nodes: numbers (NaN last) before strings. */
function compareKeys(a: unknown, b: unknown): number {
  if (typeof a !== typeof b) return typeof a === 'number' ? -1 : 1
  if (typeof a === 'number') {
    const x = a
    const y = b as number
    if (x !== x) return y !== y ? 0 : 1
    if (y !== y) return -1
    return x < y ? -1 : x > y ? 1 : 0
  }
  return (a as string) < (b as string) ? -1 : (a as string) > (b as string) ? 1 : 0
}

/** A node holding two entries whose hashes first differ at or below `shift`. */
function mergeTwo(shift: number, h1: number, k1: unknown, v1: unknown, h2: number, k2: unknown, v2: unknown, owner: Owner | null): TrieNode {
  if (shift > MAX_SHIFT) return new CNode(h1, compareKeys(k1, k2) < 0 ? [k1, v1, k2, v2] : [k2, v2, k1, v1], owner)
  const f1 = (h1 >>> shift) & MASK
  const f2 = (h2 >>> shift) & MASK
  if (f1 !== f2) {
    const arr = f1 < f2 ? [k1, v1, k2, v2] : [k2, v2, k1, v1]
    return new BNode((1 << f1) | (1 << f2), 0, arr, owner)
  }
  return new BNode(0, 1 << f1, [mergeTwo(shift + BITS, h1, k1, v1, h2, k2, v2, owner)], owner)
}

function setInCollision(node: CNode, key: unknown, value: unknown, owner: Owner | null): CNode {
  const arr = node.arr
  for (let i = 0; i < arr.length; i += 2) {
    if (keyEquals(arr[i], key)) {
      if (Object.is(arr[i + 1], value)) return node
      change.changed = true
      const n = editableC(node, owner)
      n.arr[i + 1] = value
      return n
    }
  }
  change.added = true
  const n = editableC(node, owner)
  // Kept sorted, so that the order does not depend on the order of inserts.
  let at = 0
  while (at < n.arr.length && compareKeys(n.arr[at], key) < 0) at += 2
  insertPair(n.arr, at, key, value)
  return n
}

function setIn(node: BNode, shift: number, h: number, key: unknown, value: unknown, owner: Owner | null): BNode {
  const bit = 1 << ((h >>> shift) & MASK)
  const datamap = node.datamap
  if ((datamap & bit) !== 0) {
    const i = 2 * popcount(datamap & (bit - 1))
    const k = node.arr[i]
    if (k === key || (k !== k && key !== key)) {
      if (Object.is(node.arr[i + 1], value)) return node
      change.changed = true
      const n = editable(node, owner)
      n.arr[i + 1] = value
      return n
    }
    // Two keys share this slot: push both one level down.
    change.added = true
    const sub = mergeTwo(shift + BITS, hashKey(k as PMapKey), k, node.arr[i + 1], h, key, value, owner)
    const old = node.arr
    const dataLen = 2 * popcount(datamap)
    const nodeAt = dataLen - 2 + popcount(node.nodemap & (bit - 1))
    const arr: unknown[] = []
    for (let x = 0; x < i; x++) arr.push(old[x])
    for (let x = i + 2; x < dataLen; x++) arr.push(old[x])
    for (let x = dataLen; x < dataLen + (nodeAt - (dataLen - 2)); x++) arr.push(old[x])
    arr.push(sub)
    for (let x = dataLen + (nodeAt - (dataLen - 2)); x < old.length; x++) arr.push(old[x])
    if (owner !== null && node.owner === owner) {
      node.arr = arr
      node.datamap = datamap ^ bit
      node.nodemap |= bit
      return node
    }
    return new BNode(datamap ^ bit, node.nodemap | bit, arr, owner)
  }
  if ((node.nodemap & bit) !== 0) {
    const j = 2 * popcount(datamap) + popcount(node.nodemap & (bit - 1))
    const child = node.arr[j]
    const updated = shift + BITS > MAX_SHIFT ? setInCollision(child as CNode, key, value, owner) : setIn(child as BNode, shift + BITS, h, key, value, owner)
    if (updated === child) return node
    const n = editable(node, owner)
    n.arr[j] = updated
    return n
  }
  change.added = true
  const n = editable(node, owner)
  insertPair(n.arr, 2 * popcount(datamap & (bit - 1)), key, value)
  n.datamap = datamap | bit
  return n
}

/** A node that, after a delete, holds a single entry and no children: its parent takes the entry in. */
function singleEntry(node: TrieNode): boolean {
  return node instanceof CNode ? node.arr.length === 2 : node.nodemap === 0 && node.arr.length === 2
}

function deleteIn(node: TrieNode, shift: number, h: number, key: unknown, owner: Owner | null): TrieNode {
  if (node instanceof CNode) {
    for (let i = 0; i < node.arr.length; i += 2) {
      if (keyEquals(node.arr[i], key)) {
        change.removed = true
        const n = editableC(node, owner)
        removePair(n.arr, i)
        return n
      }
    }
    return node
  }
  const bit = 1 << ((h >>> shift) & MASK)
  if ((node.datamap & bit) !== 0) {
    const i = 2 * popcount(node.datamap & (bit - 1))
    if (!keyEquals(node.arr[i], key)) return node
    change.removed = true
    const n = editable(node, owner)
    removePair(n.arr, i)
    n.datamap ^= bit
    return n
  }
  if ((node.nodemap & bit) !== 0) {
    const j = 2 * popcount(node.datamap) + popcount(node.nodemap & (bit - 1))
    const child = node.arr[j] as TrieNode
    const updated = deleteIn(child, shift + BITS, h, key, owner)
    if (!change.removed) return node
    // (A child edited in place comes back as itself, and may still need inlining.)
    if (updated === child && !singleEntry(updated)) return node
    const n = editable(node, owner)
    if (singleEntry(updated)) {
      // Canonical form: a sub-trie of one entry is stored as an entry of its parent.
      const k = updated.arr[0]
      const v = updated.arr[1]
      n.arr.splice(j, 1)
      n.nodemap ^= bit
      n.arr.splice(2 * popcount(n.datamap & (bit - 1)), 0, k, v)
      n.datamap |= bit
    } else {
      n.arr[j] = updated
    }
    return n
  }
  return node
}

/** Returned by lookup() for a missing key (undefined is a legal value). */
const NOT_FOUND: unique symbol = Symbol('not found')

function lookup(root: BNode, h: number, key: unknown): unknown {
  let node: TrieNode = root
  let shift = 0
  for (;;) {
    if (node instanceof CNode) {
      for (let i = 0; i < node.arr.length; i += 2) if (keyEquals(node.arr[i], key)) return node.arr[i + 1]
      return NOT_FOUND
    }
    const bit = 1 << ((h >>> shift) & MASK)
    if ((node.datamap & bit) !== 0) {
      const i = 2 * popcount(node.datamap & (bit - 1))
      return keyEquals(node.arr[i], key) ? node.arr[i + 1] : NOT_FOUND
    }
    if ((node.nodemap & bit) === 0) return NOT_FOUND
    node = node.arr[2 * popcount(node.datamap) + popcount(node.nodemap & (bit - 1))] as TrieNode
    shift += BITS
  }
}

function forEachIn(node: TrieNode, fn: (value: unknown, key: unknown) => void): void {
  if (node instanceof CNode) {
    for (let i = 0; i < node.arr.length; i += 2) fn(node.arr[i + 1], node.arr[i])
    return
  }
  const dataLen = 2 * popcount(node.datamap)
  for (let i = 0; i < dataLen; i += 2) fn(node.arr[i + 1], node.arr[i])
  for (let j = dataLen; j < node.arr.length; j++) forEachIn(node.arr[j] as TrieNode, fn)
}

function* entriesIn(node: TrieNode): Generator<[unknown, unknown]> {
  if (node instanceof CNode) {
    for (let i = 0; i < node.arr.length; i += 2) yield [node.arr[i], node.arr[i + 1]]
    return
  }
  const dataLen = 2 * popcount(node.datamap)
  for (let i = 0; i < dataLen; i += 2) yield [node.arr[i], node.arr[i + 1]]
  for (let j = dataLen; j < node.arr.length; j++) yield* entriesIn(node.arr[j] as TrieNode)
}

const EMPTY_ROOT = new BNode(0, 0, [], null)

export class PMap<K extends PMapKey, V> implements Iterable<[K, V]> {
  private root: BNode
  private count: number
  /** Non-null while transient: nodes with this owner may be changed in place. */
  private owner: Owner | null
  private altered = false

  private constructor(root: BNode, count: number, owner: Owner | null) {
    this.root = root
    this.count = count
    this.owner = owner
  }

  static empty<K extends PMapKey, V>(): PMap<K, V> {
    return new PMap<K, V>(EMPTY_ROOT, 0, null)
  }

  static from<K extends PMapKey, V>(entries: Iterable<readonly [K, V]>): PMap<K, V> {
    const m = PMap.empty<K, V>().asMutable()
    for (const [k, v] of entries) m.set(k, v)
    return m.asImmutable()
  }

  get size(): number {
    return this.count
  }

  get(key: K): V | undefined {
    const v = lookup(this.root, hashKey(key), key)
    return v === NOT_FOUND ? undefined : (v as V)
  }

  has(key: K): boolean {
    return lookup(this.root, hashKey(key), key) !== NOT_FOUND
  }

  /** Persistent: a new map (this one untouched). Transient: changes this map and returns it. */
  set(key: K, value: V): PMap<K, V> {
    if (key === 0) key = 0 as K // -0 is stored as +0, like a JS Map does
    change.added = false
    change.changed = false
    const root = setIn(this.root, 0, hashKey(key), key, value, this.owner)
    if (!change.added && !change.changed) return this
    const count = this.count + (change.added ? 1 : 0)
    if (this.owner !== null) {
      this.root = root
      this.count = count
      this.altered = true
      return this
    }
    return new PMap<K, V>(root, count, null)
  }

  /** Persistent: a new map without `key`. Transient: removes it from this map. */
  delete(key: K): PMap<K, V> {
    change.removed = false
    // The root is always a BNode: deleteIn only inlines children into their parent.
    const newRoot = deleteIn(this.root, 0, hashKey(key), key, this.owner) as BNode
    if (!change.removed) return this
    if (this.owner !== null) {
      this.root = newRoot
      this.count--
      this.altered = true
      return this
    }
    return new PMap<K, V>(newRoot, this.count - 1, null)
  }

  clear(): PMap<K, V> {
    if (this.owner !== null) {
      if (this.count > 0) this.altered = true
      this.root = EMPTY_ROOT
      this.count = 0
      return this
    }
    return this.count === 0 ? this : PMap.empty<K, V>()
  }

  /** A transient copy, O(1): nodes are copied the first time a change touches them. */
  asMutable(): PMap<K, V> {
    return new PMap<K, V>(this.root, this.count, new Owner())
  }

  /** Seals this map in place (O(1)); later changes return new maps. */
  asImmutable(): PMap<K, V> {
    this.owner = null
    return this
  }

  get isTransient(): boolean {
    return this.owner !== null
  }

  /** Whether a change was made since asMutable(). */
  wasAltered(): boolean {
    return this.altered
  }

  forEach(fn: (value: V, key: K) => void): void {
    forEachIn(this.root, fn as (value: unknown, key: unknown) => void)
  }

  keys(): K[] {
    const out: K[] = []
    this.forEach((_, k) => out.push(k))
    return out
  }

  values(): V[] {
    const out: V[] = []
    this.forEach((v) => out.push(v))
    return out
  }

  entries(): Array<[K, V]> {
    const out: Array<[K, V]> = []
    this.forEach((v, k) => out.push([k, v]))
    return out
  }

  [Symbol.iterator](): Iterator<[K, V]> {
    return entriesIn(this.root) as Iterator<[K, V]>
  }
}

export function isPMap(value: unknown): value is PMap<PMapKey, unknown> {
  return value instanceof PMap
}
