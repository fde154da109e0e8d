// The wire format between replicas: frames of a 4-byte big-endian body length followed
// by a msgpack body. The first frame each way is a handshake; every later frame on a
// connection is one Message, from the dialer to the listener only.
//
// Slot values are the bulk of the traffic (an accept carries a whole batch, and the
// leader broadcasts the same SlotValue object to every follower). A MessageEncoder
// encodes each SlotValue object once per event-loop turn and embeds the bytes in every
// message that carries it as a msgpack ext of type VALUE_EXT; the decoder turns the ext
// back into the plain object, so receivers never see the difference. The cache lives
// for one flush (the caller clears it) so that it never keeps values alive.

import { Decoder, Encoder, ExtensionCodec } from '@msgpack/msgpack'
import type { Message, SlotValue } from '../paxos/types.ts'
import { rememberValueBytes, valueBytes } from '../value-bytes.ts'

/** msgpack ext type of a pre-encoded SlotValue (application types are 0..127). */
export const VALUE_EXT = 0x51

/** Bytes of the length prefix of a frame. */
export const FRAME_HEADER_BYTES = 4

/** Protocol name and version, checked by both ends of a handshake. */
export const PROTOCOL = 'quipu-peer/1'

/** Largest handshake body accepted (a cluster name and a few numbers). */
export const HANDSHAKE_BYTES_MAX = 4096

class PreEncoded {
  constructor(readonly bytes: Uint8Array) {}
}

const valueDecoder = new Decoder()

const extensionCodec = new ExtensionCodec()
extensionCodec.register({
  type: VALUE_EXT,
  encode: (input) => (input instanceof PreEncoded ? input.bytes : null),
  decode: (data) => {
    const value = valueDecoder.decode(data) as SlotValue
    // Stored as received: the accept and chosen records splice these bytes in (value-bytes.ts).
    if (typeof value === 'object' && value !== null) rememberValueBytes(value, data)
    return value
  },
})

interface ValueHolder {
  readonly value: SlotValue
}

/** Encodes messages into frames, sharing the encoding of SlotValues until clearCache(). */
export class MessageEncoder {
  /** For messages that carry SlotValues. */
  // ignoreUndefined: an absent field stays absent (msgpack would turn undefined into null).
  private readonly encoder = new Encoder({ extensionCodec, ignoreUndefined: true })
  /** For the others: skipping the extension lookup per object saves ~10% on small messages. */
  private readonly plainEncoder = new Encoder({ ignoreUndefined: true })
  private cache = new Map<SlotValue, PreEncoded>()

  /** How many SlotValue encodings the cache saved (for tests and benchmarks). */
  cacheHits = 0

  /** Returns a frame (length prefix + body). Throws only if the message cannot be msgpack-encoded (a bug). */
  encodeFrame(msg: Message): Buffer {
    const prepared = this.prepare(msg)
    const body = prepared === msg ? this.plainEncoder.encodeSharedRef(msg) : this.encoder.encodeSharedRef(prepared)
    const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + body.length)
    frame.writeUInt32BE(body.length, 0)
    frame.set(body, FRAME_HEADER_BYTES)
    return frame
  }

  /** Forgets the shared encodings; call once the frames that used them are written. */
  clearCache(): void {
    if (this.cache.size > 0) this.cache = new Map()
  }

  private pre(value: SlotValue): PreEncoded {
    let p = this.cache.get(value)
    if (p === undefined) {
      p = new PreEncoded(valueBytes(value))
      this.cache.set(value, p)
    } else {
      this.cacheHits++
    }
    return p
  }

  private withValue<T extends ValueHolder>(holder: T): Omit<T, 'value'> & { value: PreEncoded } {
    return { ...holder, value: this.pre(holder.value) }
  }

  /** Replaces every SlotValue in the message by its shared encoding. */
  private prepare(msg: Message): unknown {
    switch (msg.type) {
      case 'accept':
        return this.withValue(msg)
      case 'promise':
        return { ...msg, accepted: msg.accepted.map((a) => this.withValue(a)), chosen: msg.chosen.map((r) => this.withValue(r)) }
      case 'catchupReply':
        return { ...msg, records: msg.records.map((r) => this.withValue(r)) }
      default:
        return msg
    }
  }
}

const messageDecoder = new Decoder({ extensionCodec })

/**
 * Decodes one frame body. Throws on undecodable msgpack (including trailing bytes).
 * Binary fields come back as plain Uint8Array views into `body` (never Buffers, whose
 * slice() shares memory where Uint8Array's copies).
 */
export function decodeBody(body: Uint8Array): unknown {
  const plain = Buffer.isBuffer(body) ? new Uint8Array(body.buffer, body.byteOffset, body.byteLength) : body
  return messageDecoder.decode(plain)
}

/** The first frame on a connection, from the dialer. */
export interface Hello {
  readonly protocol: string
  readonly cluster: string
  readonly from: number
  readonly to: number
}

/** The listener's answer to a Hello: `ok` with its identity, or a refusal with the reason. */
export type HelloReply =
  | { readonly protocol: string; readonly ok: true; readonly cluster: string; readonly from: number; readonly to: number }
  | { readonly protocol: string; readonly ok: false; readonly reason: string }

const plainEncoder = new Encoder()

export function encodeControlFrame(value: Hello | HelloReply): Buffer {
  const body = plainEncoder.encode(value)
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + body.length)
  frame.writeUInt32BE(body.length, 0)
  frame.set(body, FRAME_HEADER_BYTES)
  return frame
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array)
}

/** Parses a Hello, or returns why it is not one. */
export function parseHello(v: unknown): Hello | string {
  if (!isRecord(v)) return 'handshake is not a map'
  if (v['protocol'] !== PROTOCOL) return `unknown protocol ${JSON.stringify(v['protocol'])}, expected ${PROTOCOL}`
  const { cluster, from, to } = v
  if (typeof cluster !== 'string') return 'handshake has no cluster name'
  if (typeof from !== 'number' || typeof to !== 'number') return 'handshake has no numeric from/to'
  return { protocol: PROTOCOL, cluster, from, to }
}

/** Parses a HelloReply, or returns why it is not one. */
export function parseHelloReply(v: unknown): HelloReply | string {
  if (!isRecord(v)) return 'handshake reply is not a map'
  if (v['protocol'] !== PROTOCOL) return `unknown protocol ${JSON.stringify(v['protocol'])}, expected ${PROTOCOL}`
  if (v['ok'] === false) return { protocol: PROTOCOL, ok: false, reason: typeof v['reason'] === 'string' ? v['reason'] : 'no reason given' }
  const { cluster, from, to } = v
  if (v['ok'] !== true || typeof cluster !== 'string' || typeof from !== 'number' || typeof to !== 'number') return 'malformed handshake reply'
  return { protocol: PROTOCOL, ok: true, cluster, from, to }
}

/**
 * The only check the transport makes on a message: a map addressed to this replica by
 * the replica the handshake named. The core validates the rest.
 */
export function checkMessage(v: unknown, self: number, peer: number): string | null {
  if (!isRecord(v)) return 'message is not a map'
  if (typeof v['to'] !== 'number' || v['to'] !== self) return `message addressed to ${String(v['to'])}, not to ${self}`
  if (typeof v['from'] !== 'number' || v['from'] !== peer) return `message from ${String(v['from'])} on the connection of replica ${peer}`
  return null
}
