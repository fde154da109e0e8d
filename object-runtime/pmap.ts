// PMap: a persistent hash map (a CHAMP trie: Steindorfer & Vinju, OOPSLA 2015) for
// string and number keys, built for replicated state:
//
// - Compact: keys and values sit inline in the node arrays (no object per entry), and a
//   node is one array (header slots, then entries, then children): about half the
//   memory of an immutable.js Map, and one pointer hop per level fewer than a node object
//   holding an array (see README.md for measured figures).
// - Transient editing: `asMutable()` (O(1)) gives a copy that `set`/`delete` change in
//   place, copying a node only the first time it is touched; `asImmutable()` (O(1))
//   seals it. This is what lets the runtime apply a whole batch of ops cheaply while
//   older snapshots stay untouched. A working copy that starts empty (a replay from
//   scratch, a checkpoint being loaded) keeps its entries in a hash table and builds the
//   trie in one O(n) pass when it is sealed, copied or iterated (setPending, buildTrie):
//   that seal is not O(1), but it replaces n slower inserts.
// - Canonical: the trie's shape, hence the iteration order, depends only on the set of
//   keys, not on the history of inserts and deletes — two clients (or a client restored
//   from a checkpoint) iterate the same map in the same order.
// - Deterministic hashing (no per-process seed). Keys compare with ===, NaN equal to
//   itself, -0 stored as 0; 1 and '1' are different keys.

export type PMapKey = string | number

/** Identity of one transient editing session. */
class Owner {}

// Node layout, one array per node:
//   bitmap node:    [datamap, nodemap, owner, k0, v0, k1, v1, ..., child0, child1, ...]
//   collision node: [hash,    0,       owner, k0, v0, ...]   (only below the last level)
// Bitmaps are stored as signed 32-bit integers (always small integers for V8). Entries
// and children are in bit order. A node is a collision node iff it sits at shift > 30.
type TrieNode = unknown[]
const DATAMAP = 0
const NODEMAP = 1
const OWNER = 2
const HEADER = 3

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

/** The node itself if this session owns it, else a copy this session owns. */
function editable(node: TrieNode, owner: Owner | null): TrieNode {
  if (owner !== null && node[OWNER] === owner) return node
  const copy = node.slice()
  copy[OWNER] = owner
  return copy
}

/** A node holding two entries whose hashes first differ at or below `shift`. */
function mergeTwo(shift: number, h1: number, k1: unknown, v1: unknown, h2: number, k2: unknown, v2: unknown, owner: Owner | null): TrieNode {
  if (shift > MAX_SHIFT) return compareKeys(k1, k2) < 0 ? [h1, 0, owner, k1, v1, k2, v2] : [h1, 0, owner, k2, v2, k1, v1]
  const f1 = (h1 >>> shift) & MASK
  const f2 = (h2 >>> shift) & MASK
  if (f1 !== f2) return f1 < f2 ? [((1 << f1) | (1 << f2)) | 0, 0, owner, k1, v1, k2, v2] : [((1 << f1) | (1 << f2)) | 0, 0, owner, k2, v2, k1, v1]
  return [0, (1 << f1) | 0, owner, mergeTwo(shift + BITS, h1, k1, v1, h2, k2, v2, owner)]
}

function setInCollision(node: TrieNode, key: unknown, value: unknown, owner: Owner | null): TrieNode {
  for (let i = HEADER; i < node.length; i += 2) {
    if (keyEquals(node[i], key)) {
      if (Object.is(node[i + 1], value)) return node
      change.changed = true
      const n = editable(node, owner)
      n[i + 1] = value
      return n
    }
  }
  change.added = true
  const n = editable(node, owner)
  // Kept sorted, so that the order does not depend on the order of inserts.
  let at = HEADER
  while (at < n.length && compareKeys(n[at], key) < 0) at += 2
  insertPair(n, at, key, value)
  return n
}

function setIn(node: TrieNode, shift: number, h: number, key: unknown, value: unknown, owner: Owner | null): TrieNode {
  const bit = 1 << ((h >>> shift) & MASK)
  const datamap = node[DATAMAP] as number
  if ((datamap & bit) !== 0) {
    const i = HEADER + 2 * popcount(datamap & (bit - 1))
    const k = node[i]
    if (k === key || (k !== k && key !== key)) {
      if (Object.is(node[i + 1], value)) return node
      change.changed = true
      const n = editable(node, owner)
      n[i + 1] = value
      return n
    }
    // Two keys share this slot: push both one level down.
    change.added = true
    const nodemap = node[NODEMAP] as number
    const sub = mergeTwo(shift + BITS, hashKey(k as PMapKey), k, node[i + 1], h, key, value, owner)
    const childAt = HEADER + 2 * popcount(datamap) + popcount(nodemap & (bit - 1)) // among the old children
    // The entry at i leaves, the child comes in at childAt (one slot shorter): in place
    // in a node this session owns, else in one exactly sized copy.
    const n = editable(node, owner)
    const last = n.length - 1
    for (let x = i; x < childAt - 2; x++) n[x] = n[x + 2]
    n[childAt - 2] = sub
    for (let x = childAt - 1; x < last; x++) n[x] = n[x + 1]
    n.pop()
    n[DATAMAP] = (datamap ^ bit) | 0
    n[NODEMAP] = (nodemap | bit) | 0
    return n
  }
  const nodemap = node[NODEMAP] as number
  if ((nodemap & bit) !== 0) {
    const j = HEADER + 2 * popcount(datamap) + popcount(nodemap & (bit - 1))
    const child = node[j] as TrieNode
    const updated = shift + BITS > MAX_SHIFT ? setInCollision(child, key, value, owner) : setIn(child, shift + BITS, h, key, value, owner)
    if (updated === child) return node
    const n = editable(node, owner)
    n[j] = updated
    return n
  }
  change.added = true
  const n = editable(node, owner)
  insertPair(n, HEADER + 2 * popcount(datamap & (bit - 1)), key, value)
  n[DATAMAP] = (datamap | bit) | 0
  return n
}

/** A sub-trie left with a single entry and no children: its parent takes the entry in. */
function singleEntry(node: TrieNode, collision: boolean): boolean {
  return node.length === HEADER + 2 && (collision || node[NODEMAP] === 0)
}

function deleteIn(node: TrieNode, shift: number, h: number, key: unknown, owner: Owner | null): TrieNode {
  if (shift > MAX_SHIFT) {
    for (let i = HEADER; i < node.length; i += 2) {
      if (keyEquals(node[i], key)) {
        change.removed = true
        const n = editable(node, owner)
        removePair(n, i)
        return n
      }
    }
    return node
  }
  const bit = 1 << ((h >>> shift) & MASK)
  const datamap = node[DATAMAP] as number
  if ((datamap & bit) !== 0) {
    const i = HEADER + 2 * popcount(datamap & (bit - 1))
    if (!keyEquals(node[i], key)) return node
    change.removed = true
    const n = editable(node, owner)
    removePair(n, i)
    n[DATAMAP] = (datamap ^ bit) | 0
    return n
  }
  const nodemap = node[NODEMAP] as number
  if ((nodemap & bit) !== 0) {
    const j = HEADER + 2 * popcount(datamap) + popcount(nodemap & (bit - 1))
    const child = node[j] as TrieNode
    const updated = deleteIn(child, shift + BITS, h, key, owner)
    if (!change.removed) return node
    const inline = singleEntry(updated, shift + BITS > MAX_SHIFT)
    // (A child edited in place comes back as itself, and may still need inlining.)
    if (updated === child && !inline) return node
    if (!inline) {
      const n = editable(node, owner)
      n[j] = updated
      return n
    }
    // Canonical form: a sub-trie of one entry is stored as an entry of its parent.
    // The child at j leaves, the entry comes in at dataAt (one slot longer).
    const k = updated[HEADER]
    const v = updated[HEADER + 1]
    const dataAt = HEADER + 2 * popcount(datamap & (bit - 1))
    const n = editable(node, owner)
    const len = n.length
    n.push(undefined)
    for (let x = len - 1; x > j; x--) n[x + 1] = n[x]
    for (let x = j - 1; x >= dataAt; x--) n[x + 2] = n[x]
    n[dataAt] = k
    n[dataAt + 1] = v
    n[DATAMAP] = (datamap | bit) | 0
    n[NODEMAP] = (nodemap ^ bit) | 0
    return n
  }
  return node
}

/** Returned by lookup() for a missing key (undefined is a legal value). */
const NOT_FOUND: unique symbol = Symbol('not found')

function lookup(root: TrieNode, h: number, key: unknown): unknown {
  let node = root
  for (let shift = 0; shift <= MAX_SHIFT; shift += BITS) {
    const bit = 1 << ((h >>> shift) & MASK)
    const datamap = node[DATAMAP] as number
    if ((datamap & bit) !== 0) {
      const i = HEADER + 2 * popcount(datamap & (bit - 1))
      const k = node[i]
      return k === key || (k !== k && key !== key) ? node[i + 1] : NOT_FOUND
    }
    const nodemap = node[NODEMAP] as number
    if ((nodemap & bit) === 0) return NOT_FOUND
    node = node[HEADER + 2 * popcount(datamap) + popcount(nodemap & (bit - 1))] as TrieNode
  }
  for (let i = HEADER; i < node.length; i += 2) if (keyEquals(node[i], key)) return node[i + 1]
  return NOT_FOUND
}

function forEachIn(node: TrieNode, shift: number, fn: (value: unknown, key: unknown) => void): void {
  if (shift > MAX_SHIFT) {
    for (let i = HEADER; i < node.length; i += 2) fn(node[i + 1], node[i])
    return
  }
  const dataEnd = HEADER + 2 * popcount(node[DATAMAP] as number)
  for (let i = HEADER; i < dataEnd; i += 2) fn(node[i + 1], node[i])
  for (let j = dataEnd; j < node.length; j++) forEachIn(node[j] as TrieNode, shift + BITS, fn)
}

function* entriesIn(node: TrieNode, shift: number): Generator<[unknown, unknown]> {
  if (shift > MAX_SHIFT) {
    for (let i = HEADER; i < node.length; i += 2) yield [node[i], node[i + 1]]
    return
  }
  const dataEnd = HEADER + 2 * popcount(node[DATAMAP] as number)
  for (let i = HEADER; i < dataEnd; i += 2) yield [node[i], node[i + 1]]
  for (let j = dataEnd; j < node.length; j++) yield* entriesIn(node[j] as TrieNode, shift + BITS)
}

const EMPTY_ROOT: TrieNode = Object.freeze([0, 0, null]) as unknown as TrieNode

/** Marks a deleted entry of a Pending table. */
const DELETED: unique symbol = Symbol('deleted')

/**
 * The entries of a working copy that started empty, before its trie is built (see
 * PMap.setPending): an open-addressing hash table on hashKey. Entries are appended in
 * arrays (keys, values, hashes); `slots` holds entry index + 1, 0 for free. A deleted
 * entry keeps its slot (a tombstone) until the table grows. A lookup mostly touches one
 * slot and one stored hash; keys are compared only when the 32-bit hashes are equal.
 */
class Pending {
  keys: unknown[] = []
  values: unknown[] = []
  hashes = new Int32Array(16)
  /** Entries appended (live and deleted). */
  used = 0
  /** Live entries. */
  size = 0
  private slots = new Int32Array(32)

  /** The entry of `key`, or -1. */
  find(key: unknown, h: number): number {
    const slots = this.slots
    const mask = slots.length - 1
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const s = slots[i]!
      if (s === 0) return -1
      const e = s - 1
      if (this.hashes[e] === h && keyEquals(this.keys[e], key)) return e
    }
  }

  /** Sets `key`: 0 if nothing changed, 1 if added, 2 if its value changed. */
  set(key: unknown, h: number, value: unknown): 0 | 1 | 2 {
    const slots = this.slots
    const mask = slots.length - 1
    let i = h & mask
    for (; ; i = (i + 1) & mask) {
      const s = slots[i]!
      if (s === 0) break
      const e = s - 1
      if (this.hashes[e] === h && keyEquals(this.keys[e], key)) {
        if (Object.is(this.values[e], value)) return 0
        this.values[e] = value
        return 2
      }
    }
    const e = this.used++
    if (e === this.hashes.length) {
      const grown = new Int32Array(e * 2)
      grown.set(this.hashes)
      this.hashes = grown
    }
    this.keys.push(key)
    this.values.push(value)
    this.hashes[e] = h
    slots[i] = e + 1
    this.size++
    if (this.used * 2 > slots.length) this.rehash()
    return 1
  }

  delete(key: unknown, h: number): boolean {
    const e = this.find(key, h)
    if (e < 0) return false
    // The slot stays (probes go past it); the entry no longer matches any key.
    this.keys[e] = DELETED
    this.values[e] = undefined
    this.hashes[e] = ~this.hashes[e]!
    this.size--
    return true
  }

  /** Live entries only, in a table at most a quarter full. */
  private rehash(): void {
    let live = 0
    for (let e = 0; e < this.used; e++) {
      if (this.keys[e] === DELETED) continue
      this.keys[live] = this.keys[e]
      this.values[live] = this.values[e]
      this.hashes[live] = this.hashes[e]!
      live++
    }
    this.keys.length = live
    this.values.length = live
    this.used = live
    let cap = 32
    while (cap < live * 4) cap *= 2
    const slots = new Int32Array(cap)
    const mask = cap - 1
    for (let e = 0; e < live; e++) {
      let i = this.hashes[e]! & mask
      while (slots[i] !== 0) i = (i + 1) & mask
      slots[i] = e + 1
    }
    this.slots = slots
  }
}

/** Per level of a bulk build (0..6, 7 for collision nodes): the node being filled, and its fragments' runs. */
const bulkNodes: unknown[][] = Array.from({ length: 8 }, () => new Array<unknown>(HEADER + 64).fill(undefined))
const bulkRuns = Array.from({ length: 8 }, () => new Int32Array(64))

/** The entries of a bulk build: `order` and `idx` sorted in trie order (see buildTrie). */
interface Bulk {
  readonly keys: unknown[]
  readonly values: unknown[]
  readonly hashes: Int32Array
  /** trieOrder() of the hash of entry idx[i], ascending. */
  readonly order: Uint32Array
  /** Entry (index into keys, values, hashes) at each sorted position. */
  readonly idx: Int32Array
  readonly owner: Owner | null
}

/** The fragment of `level` (0..6) in a trieOrder() value. */
function orderFragment(order: number, level: number): number {
  return level < 6 ? (order >>> (27 - BITS * level)) & MASK : order & 3
}

/**
 * The canonical node for the sorted positions [lo, hi) of a bulk build (equal hash
 * fragments above `shift`): exactly the node that inserting them one by one makes, since
 * the shape depends only on the set of keys. Each fragment of this level is a run of
 * consecutive positions: one entry stays here, more make a child.
 */
function buildNode(b: Bulk, lo: number, hi: number, shift: number): TrieNode {
  const { keys, values, order, idx } = b
  if (shift > MAX_SHIFT) {
    // Equal 32-bit hashes: a collision node, sorted like setInCollision keeps it.
    const entries = Array.from(idx.subarray(lo, hi)).sort((x, y) => compareKeys(keys[x], keys[y]))
    const node: TrieNode = [b.hashes[entries[0]!]!, 0, b.owner]
    for (const x of entries) node.push(keys[x], values[x])
    return node
  }
  const level = shift / BITS
  const runs = bulkRuns[level]! // runs[f]: start of fragment f's run, runs[32 + f]: its length
  runs.fill(0, 32)
  let datamap = 0
  let nodemap = 0
  for (let i = lo; i < hi; ) {
    const f = orderFragment(order[i]!, level)
    let j = i + 1
    while (j < hi && orderFragment(order[j]!, level) === f) j++
    runs[f] = i
    runs[32 + f] = j - i
    if (j - i === 1) datamap |= 1 << f
    else nodemap |= 1 << f
    i = j
  }
  // Filled by index and copied out at its exact size; the scratch array keeps its room
  // (setting its length to 0 would drop it) and is cleared of references afterwards.
  const node = bulkNodes[level]!
  node[0] = datamap | 0
  node[1] = nodemap | 0
  node[2] = b.owner
  let size = HEADER
  // Entries in bit order, then children in bit order.
  for (let f = 0; f < 32; f++) {
    if (runs[32 + f] !== 1) continue
    const x = idx[runs[f]!]!
    node[size++] = keys[x]
    node[size++] = values[x]
  }
  for (let f = 0; f < 32; f++) {
    const n = runs[32 + f]!
    if (n > 1) node[size++] = buildNode(b, runs[f]!, runs[f]! + n, shift + BITS)
  }
  const out = node.slice(0, size)
  node.fill(undefined, 0, size)
  return out
}

/** A hash's fragments, level 0 first, as one unsigned number: sorting by it sorts in trie order. */
function trieOrder(h: number): number {
  return (
    (((h & MASK) << 27) |
      (((h >>> 5) & MASK) << 22) |
      (((h >>> 10) & MASK) << 17) |
      (((h >>> 15) & MASK) << 12) |
      (((h >>> 20) & MASK) << 7) |
      (((h >>> 25) & MASK) << 2) |
      (h >>> 30)) >>>
    0
  )
}

/**
 * The trie of the live entries of a Pending table, built in one pass: the entries are
 * sorted in trie order (a radix sort, 3 passes of 11 bits) and each node is made once,
 * at its final size, from consecutive sorted positions. Memory is mostly read in order
 * instead of one random walk down the trie per key.
 */
function buildTrie(table: Pending, owner: Owner | null): TrieNode {
  const n = table.size
  if (n === 0) return EMPTY_ROOT
  const { keys, values, hashes } = table
  let order = new Uint32Array(n)
  let idx = new Int32Array(n)
  for (let e = 0, i = 0; e < table.used; e++) {
    if (keys[e] === DELETED) continue
    order[i] = trieOrder(hashes[e]!)
    idx[i] = e
    i++
  }
  let order2 = new Uint32Array(n)
  let idx2 = new Int32Array(n)
  const counts = new Int32Array(2048)
  for (let shift = 0; shift < 32; shift += 11) {
    counts.fill(0)
    for (let x = 0; x < n; x++) counts[(order[x]! >>> shift) & 2047]!++
    for (let d = 0, at = 0; d < 2048; d++) {
      const c = counts[d]!
      counts[d] = at
      at += c
    }
    for (let x = 0; x < n; x++) {
      const to = counts[(order[x]! >>> shift) & 2047]!++
      order2[to] = order[x]!
      idx2[to] = idx[x]!
    }
    ;[order, order2] = [order2, order]
    ;[idx, idx2] = [idx2, idx]
  }
  return buildNode({ keys, values, hashes, order, idx, owner }, 0, n, 0)
}

export class PMap<K extends PMapKey, V> implements Iterable<[K, V]> {
  private root: TrieNode
  private count: number
  /** Non-null while transient: nodes with this owner may be changed in place. */
  private owner: Owner | null
  private altered = false
  /**
   * Transient only: while the trie is empty, the entries go here instead (see
   * materialize()), and `count` is this map's size. Null otherwise.
   */
  private pending: Pending | null = null

  private constructor(root: TrieNode, count: number, owner: Owner | null) {
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
    const pending = this.pending
    if (pending !== null) {
      const e = pending.find(key, hashKey(key))
      return e < 0 ? undefined : (pending.values[e] as V)
    }
    const v = lookup(this.root, hashKey(key), key)
    return v === NOT_FOUND ? undefined : (v as V)
  }

  has(key: K): boolean {
    if (this.pending !== null) return this.pending.find(key, hashKey(key)) >= 0
    return lookup(this.root, hashKey(key), key) !== NOT_FOUND
  }

  /** Persistent: a new map (this one untouched). Transient: changes this map and returns it. */
  set(key: K, value: V): PMap<K, V> {
    if (key === 0) key = 0 as K // -0 is stored as +0, like a JS Map does
    if (this.owner !== null && (this.pending !== null || this.count === 0)) return this.setPending(key, value)
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
    const pending = this.pending
    if (pending !== null) {
      if (pending.delete(key, hashKey(key))) {
        this.count = pending.size
        this.altered = true
      }
      return this
    }
    change.removed = false
    // The root itself is never inlined: deleteIn only inlines children into their parent.
    const newRoot = deleteIn(this.root, 0, hashKey(key), key, this.owner)
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
      this.pending = null
      return this
    }
    return this.count === 0 ? this : PMap.empty<K, V>()
  }

  /** A transient copy, O(1): nodes are copied the first time a change touches them. */
  asMutable(): PMap<K, V> {
    this.materialize()
    return new PMap<K, V>(this.root, this.count, new Owner())
  }

  /** Seals this map in place (O(1), after a bulk build if it holds entries aside); later changes return new maps. */
  asImmutable(): PMap<K, V> {
    this.materialize()
    this.owner = null
    return this
  }

  /**
   * A working copy that starts empty (a replay from scratch, a checkpoint being loaded)
   * keeps its entries in a hash table until it must be a trie (sealed, copied or iterated in
   * canonical order), then builds the trie in one pass. One random walk down a deep trie
   * per key is mostly cache misses (~1 µs per key at a million keys, measured); the table
   * and the bulk build touch memory far less. Same keys, same trie, same answers.
   */
  private setPending(key: K, value: V): PMap<K, V> {
    const pending = (this.pending ??= new Pending())
    if (pending.set(key, hashKey(key), value) === 0) return this
    this.count = pending.size
    this.altered = true
    return this
  }

  /** Moves the pending entries (if any) into the trie: a few one by one, many in a bulk build. */
  private materialize(): void {
    const pending = this.pending
    if (pending === null) return
    this.pending = null
    if (pending.size > 16) {
      this.root = buildTrie(pending, this.owner)
      return
    }
    let root = EMPTY_ROOT
    for (let e = 0; e < pending.used; e++) {
      const k = pending.keys[e]
      if (k !== DELETED) root = setIn(root, 0, pending.hashes[e]!, k, pending.values[e], this.owner)
    }
    this.root = root
  }

  get isTransient(): boolean {
    return this.owner !== null
  }

  /** Whether a change was made since asMutable(). */
  wasAltered(): boolean {
    return this.altered
  }

  forEach(fn: (value: V, key: K) => void): void {
    this.materialize()
    forEachIn(this.root, 0, fn as (value: unknown, key: unknown) => void)
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
    this.materialize()
    return entriesIn(this.root, 0) as Iterator<[K, V]>
  }
}

export function isPMap(value: unknown): value is PMap<PMapKey, unknown> {
  return value instanceof PMap
}
