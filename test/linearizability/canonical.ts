// A canonical, injective string encoding of plain values, used by the models to hash
// states and to compare recorded outputs with expected ones. Outputs recorded against a
// real cluster come back through msgpack/JSON, so identity (`===`) is the wrong test for
// anything but primitives: two structurally equal values must compare equal.
//
// Encoding (self-delimiting, so concatenations stay injective):
//   undefined → u   null → n   true → t   false → f   number → d<String(n)> (so -0 ≡ 0)
//   bigint → b<digits>   string → JSON.stringify   Uint8Array → x<hex>;
//   Date → D<ms>;  array → [a,b]   Map → M[[k,v],…] (entries sorted by encoded key)
//   Set → S[…] (sorted)   plain object → {"k":v,…} (keys sorted, undefined fields dropped,
//   so `{ a: undefined }` equals `{}` as it does after a JSON/msgpack round trip).
// Functions and symbols are not data: they throw.

export function canonical(value: unknown): string {
  switch (typeof value) {
    case 'undefined':
      return 'u'
    case 'boolean':
      return value ? 't' : 'f'
    case 'number':
      return `d${String(value)}`
    case 'bigint':
      return `b${value.toString()}`
    case 'string':
      return JSON.stringify(value)
    case 'object':
      return value === null ? 'n' : canonicalObject(value)
    default:
      throw new TypeError(`canonical: cannot encode a ${typeof value}`)
  }
}

export function canonicalEquals(a: unknown, b: unknown): boolean {
  if (a === b) return true
  // A primitive's encoding never starts like an object's, so a primitive equals only
  // an identical primitive (=== already covers -0 ≡ 0); NaN is the one exception.
  if (typeof a !== 'object' || typeof b !== 'object') return Number.isNaN(a) && Number.isNaN(b)
  return canonical(a) === canonical(b)
}

function canonicalObject(value: object): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`
  if (value instanceof Uint8Array) return `x${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex')}`
  if (value instanceof Date) return `D${String(value.getTime())}`
  if (value instanceof Map) {
    const entries = [...value.entries()].map(([k, v]) => [canonical(k), canonical(v)] as const)
    entries.sort((x, y) => compareStrings(x[0], y[0]))
    return `M[${entries.map(([k, v]) => `[${k},${v}]`).join(',')}]`
  }
  if (value instanceof Set) {
    const items = [...value].map(canonical).sort(compareStrings)
    return `S[${items.join(',')}]`
  }
  const record = value as Record<string, unknown>
  const keys = Object.keys(record).filter((k) => record[k] !== undefined).sort(compareStrings)
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(record[k])}`).join(',')}}`
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
