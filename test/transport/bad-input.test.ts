// What the world can throw at a peer port: garbage, oversized frames, undecodable or
// misaddressed messages, silent connections, replicas of another cluster, and a peer
// that stops reading. Each closes (or refuses) that one connection with a log line;
// the process survives, other peers keep working, and memory stays bounded.

import net from 'node:net'
import type { Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { PROTOCOL, decodeBody, encodeControlFrame } from '../../log-server/transport/codec.ts'
import { MessageEncoder } from '../../log-server/transport/codec.ts'
import { FrameReader } from '../../log-server/transport/frame-reader.ts'
import type { Message } from '../../log-server/paxos/types.ts'
import { CLUSTER, HOST, freePorts, heartbeat, makeNode, sleep, slotValue, waitFor } from './helpers.ts'
import type { Node } from './helpers.ts'

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

/**
 * Starts replicas 0..n-1 of a cluster of `configured` (default n) replicas; the ones
 * not started leave their ids free for a raw socket to impersonate without a race.
 */
async function startNodes(n: number, limits = {}, configured = n): Promise<{ nodes: Node[]; ports: number[] }> {
  const ports = await freePorts(configured)
  const nodes = ports.slice(0, n).map((_, id) => makeNode(id, ports, limits))
  for (const node of nodes) cleanups.push(() => node.transport.close())
  await Promise.all(nodes.map((node) => node.transport.start()))
  await waitFor(() => nodes.every((a) => nodes.every((b) => a === b || a.transport.connected(b.id))), 'all links up')
  return { nodes, ports }
}

/** A raw client socket that records what it receives and when it closes. */
interface Raw {
  readonly socket: Socket
  readonly frames: unknown[]
  closed: boolean
}

async function rawConnect(port: number): Promise<Raw> {
  const socket = net.connect({ host: HOST, port })
  const raw: Raw = { socket, frames: [], closed: false }
  const reader = new FrameReader(1 << 20)
  socket.on('data', (chunk: Buffer) => {
    reader.feed(chunk, (body) => {
      raw.frames.push(decodeBody(body))
      return true
    })
  })
  socket.on('error', () => {})
  socket.on('close', () => {
    raw.closed = true
  })
  cleanups.push(() => {
    socket.destroy()
  })
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
  })
  return raw
}

function hello(from: number, to: number, cluster = CLUSTER): Buffer {
  return encodeControlFrame({ protocol: PROTOCOL, cluster, from, to })
}

function frameOf(body: Uint8Array): Buffer {
  const f = Buffer.alloc(4 + body.length)
  f.writeUInt32BE(body.length)
  f.set(body, 4)
  return f
}

/** Handshakes as replica `from` and waits for the ok. */
async function rawPeer(port: number, from: number, to: number): Promise<Raw> {
  const raw = await rawConnect(port)
  raw.socket.write(hello(from, to))
  await waitFor(() => raw.frames.length === 1, 'handshake reply')
  expect(raw.frames[0]).toMatchObject({ ok: true, from: to, to: from, cluster: CLUSTER })
  return raw
}

/** The cluster still works: b hears a. */
async function stillWorks(a: Node, b: Node): Promise<void> {
  const before = b.received.length
  await waitFor(() => a.transport.connected(b.id), 'link up')
  a.transport.send(heartbeat(a.id, b.id, 99))
  await waitFor(() => b.received.length === before + 1, 'a message after the bad input')
}

describe('bad input on the peer port', () => {
  it('garbage instead of a handshake is refused; the replica keeps working', async () => {
    const { nodes } = await startNodes(2)
    const [a, b] = nodes as [Node, Node]
    const raw = await rawConnect(b.port)
    raw.socket.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'))
    await waitFor(() => raw.closed, 'garbage connection closed')
    expect(b.transport.stats().rejectedConnections).toBe(1)
    expect(b.logger.text()).toMatch(/refused peer connection.*exceeds the limit/)
    await stillWorks(a, b)
  })

  it('undecodable msgpack as a handshake is refused with the reason', async () => {
    const { nodes } = await startNodes(2)
    const [a, b] = nodes as [Node, Node]
    const raw = await rawConnect(b.port)
    raw.socket.write(frameOf(Buffer.from([0xc1, 0xc1, 0xc1])))
    await waitFor(() => raw.closed, 'closed')
    expect(raw.frames[0]).toMatchObject({ ok: false, reason: expect.stringMatching(/undecodable/) })
    await stillWorks(a, b)
  })

  it('an oversized frame after the handshake closes that connection only', async () => {
    const { nodes } = await startNodes(2, { frameBytesMax: 1 << 20, queueBytesMax: 4 << 20 }, 3)
    const [a, b] = nodes as [Node, Node]
    const raw = await rawPeer(b.port, 2, 1) // as replica 2, which is not running
    const header = Buffer.alloc(4)
    header.writeUInt32BE((1 << 20) + 1)
    raw.socket.write(header)
    await waitFor(() => raw.closed, 'oversized frame connection closed')
    expect(b.transport.stats().protocolErrors).toBe(1)
    expect(b.logger.text()).toMatch(/bad frame.*exceeds the limit of 1048576/)
    await stillWorks(a, b)
  })

  it('a frame at the limit is accepted, one byte more is refused by the sender', async () => {
    const { nodes } = await startNodes(2, { frameBytesMax: 1 << 20, queueBytesMax: 4 << 20 })
    const [a, b] = nodes as [Node, Node]
    const big: Message = { type: 'accept', from: 0, to: 1, inc: 1, vec: [1, 1], ballot: { round: 1, replica: 0 }, slot: 0, value: slotValue(1, 900_000), commitSlot: 0 }
    a.transport.send(big)
    await waitFor(() => b.received.length === 1, 'big frame')
    const huge: Message = { ...big, value: slotValue(1, 1_100_000) }
    a.transport.send(huge)
    expect(a.transport.stats().peers[0]!.droppedMessages).toBe(1)
    expect(a.logger.text()).toMatch(/over frameBytesMax dropped/)
    await stillWorks(a, b)
  })

  it('undecodable and misaddressed messages after the handshake close the connection', async () => {
    const { nodes } = await startNodes(2, {}, 3)
    const [a, b] = nodes as [Node, Node]
    const cases: [Buffer, RegExp][] = [
      [frameOf(Buffer.from([0x92, 0x01])), /undecodable/],
      [new MessageEncoder().encodeFrame(heartbeat(2, 0, 1)), /addressed to 0, not to 1/],
      [new MessageEncoder().encodeFrame(heartbeat(0, 1, 1)), /from 0 on the connection of replica 2/],
      [frameOf(Buffer.from([0x2a])), /not a map/],
    ]
    for (const [frame, why] of cases) {
      const raw = await rawPeer(b.port, 2, 1)
      raw.socket.write(frame)
      await waitFor(() => raw.closed, `closed for ${String(why)}`)
      expect(b.logger.text()).toMatch(why)
    }
    expect(b.transport.stats().protocolErrors).toBe(cases.length)
    expect(b.received).toEqual([])
    await stillWorks(a, b)
  })

  it('a connection that never handshakes is closed after handshakeTimeoutMs', async () => {
    const { nodes } = await startNodes(2, { handshakeTimeoutMs: 100 })
    const [a, b] = nodes as [Node, Node]
    const raw = await rawConnect(b.port)
    await waitFor(() => raw.closed, 'silent connection closed', 2_000)
    expect(b.logger.text()).toMatch(/no handshake within 100 ms/)
    await stillWorks(a, b)
  })

  it('a flood of silent connections cannot lock a real peer out', async () => {
    const ports = await freePorts(2)
    const b = makeNode(1, ports, { pendingConnectionsMax: 4 })
    cleanups.push(() => b.transport.close())
    await b.transport.start()
    const flood: Raw[] = []
    for (let i = 0; i < 10; i++) flood.push(await rawConnect(b.port))
    await waitFor(() => flood.filter((r) => r.closed).length === 6, 'the oldest six closed')
    expect(flood.slice(0, 6).every((r) => r.closed)).toBe(true)
    expect(b.logger.text()).toMatch(/too many connections awaiting a handshake/)
    const a = makeNode(0, ports)
    cleanups.push(() => a.transport.close())
    await a.transport.start()
    await stillWorks(a, b)
  })

  it('hellos for another replica, from an unknown one or of another protocol are refused', async () => {
    const { nodes } = await startNodes(2)
    const [, b] = nodes as [Node, Node]
    const cases: [Buffer, RegExp][] = [
      [hello(0, 5), /meant for replica 5 reached replica 1/],
      [hello(7, 1), /replica 7 is not a configured peer/],
      [hello(1, 1), /replica 1 is not a configured peer/],
      [encodeControlFrame({ protocol: 'quipu-peer/0', cluster: CLUSTER, from: 0, to: 1 }), /unknown protocol/],
    ]
    for (const [frame, why] of cases) {
      const raw = await rawConnect(b.port)
      raw.socket.write(frame)
      await waitFor(() => raw.closed, 'refused')
      expect(raw.frames[0]).toMatchObject({ ok: false, reason: expect.stringMatching(why) })
    }
    expect(b.transport.stats().rejectedConnections).toBe(cases.length)
  })

  it('a replica of another cluster is refused on both sides, with log lines, and never talks', async () => {
    const ports = await freePorts(2)
    const a = makeNode(0, ports, {}, 'cluster-a')
    const b = makeNode(1, ports, {}, 'cluster-b')
    cleanups.push(() => a.transport.close(), () => b.transport.close())
    await a.transport.start()
    await b.transport.start()
    await waitFor(() => a.transport.stats().rejectedConnections > 0 && b.transport.stats().rejectedConnections > 0, 'refusals')
    await sleep(300)
    expect(a.transport.connected(1)).toBe(false)
    expect(b.transport.connected(0)).toBe(false)
    expect(b.logger.text()).toMatch(/refused peer connection.*cluster mismatch: replica 0 is in cluster \\"cluster-a\\", this replica is in \\"cluster-b\\"/)
    expect(a.logger.text()).toMatch(/cannot connect to peer.*refused by peer: cluster mismatch/)
    // The dialer logs the refusal once, however many times it redials.
    expect(a.transport.stats().peers[0]!.lastError).toMatch(/cluster mismatch/)
    expect(a.logger.lines.filter((l) => l.msg.includes('cannot connect') && String(l.fields['reason']).includes('cluster mismatch')).length).toBe(1)
    a.transport.send(heartbeat(0, 1, 1))
    await sleep(50)
    expect(b.received).toEqual([])
    expect(a.transport.stats().peers[0]!.droppedMessages).toBe(1)
  })

  it('a handshake reply from the wrong replica or cluster is not trusted', async () => {
    const [p0, p1] = await freePorts(2)
    // A fake listener on replica 1's port that answers as someone else.
    const sockets: Socket[] = []
    const server = net.createServer((s) => {
      sockets.push(s)
      s.on('error', () => {})
      s.once('data', () => s.write(encodeControlFrame({ protocol: PROTOCOL, ok: true, cluster: CLUSTER, from: 2, to: 0 })))
    })
    await new Promise<void>((r) => server.listen(p1, HOST, () => r()))
    cleanups.push(() => {
      for (const s of sockets) s.destroy()
      return new Promise<void>((r) => server.close(() => r()))
    })
    const a = makeNode(0, [p0!, p1!])
    cleanups.push(() => a.transport.close())
    await a.transport.start()
    await waitFor(() => a.logger.text().includes('handshake answered by replica 2'), 'distrust')
    expect(a.transport.connected(1)).toBe(false)
  })

  it('an impostor handshake replaces the inbound link, and the real peer takes it back', async () => {
    const { nodes } = await startNodes(2)
    const [a, b] = nodes as [Node, Node]
    const raw = await rawPeer(b.port, 0, 1)
    // b closed a's connection in favour of the newer one; a redials and displaces the impostor.
    await waitFor(() => raw.closed, 'impostor displaced')
    expect(a.transport.stats().peers[0]!.connects).toBe(2)
    await stillWorks(a, b)
  })
})

describe('a peer that stops reading', () => {
  it('bounded queue: sends beyond it are dropped and memory stays bounded', async () => {
    const [p0, p1] = await freePorts(2)
    // Replica 1 handshakes, then never reads again.
    const stalled: Socket[] = []
    const server = net.createServer((s) => {
      stalled.push(s)
      s.on('error', () => {})
      s.once('data', () => {
        s.write(encodeControlFrame({ protocol: PROTOCOL, ok: true, cluster: CLUSTER, from: 1, to: 0 }))
        s.pause()
      })
    })
    await new Promise<void>((r) => server.listen(p1, HOST, () => r()))
    cleanups.push(() => {
      for (const s of stalled) s.destroy()
      return new Promise<void>((r) => server.close(() => r()))
    })
    const queueBytesMax = 2 << 20
    const a = makeNode(0, [p0!, p1!], { queueBytesMax, frameBytesMax: 1 << 20, queueMessagesMax: 1000 })
    cleanups.push(() => a.transport.close())
    await a.transport.start()
    await waitFor(() => a.transport.connected(1), 'link to the stalled peer')

    const value = slotValue(100, 1000) // ~100 KB per accept
    const accept = (slot: number): Message => ({ type: 'accept', from: 0, to: 1, inc: 1, vec: [1, 1], ballot: { round: 1, replica: 0 }, slot, value, commitSlot: 0 })
    const baseline = process.memoryUsage().arrayBuffers
    let peak = 0
    let offered = 0
    for (let turn = 0; turn < 200; turn++) {
      for (let k = 0; k < 20; k++) a.transport.send(accept(offered++))
      await new Promise((r) => setImmediate(r))
      const st = a.transport.stats().peers[0]!
      expect(st.queuedBytes).toBeLessThanOrEqual(queueBytesMax)
      expect(st.socketBufferedBytes).toBeLessThanOrEqual(queueBytesMax)
      peak = Math.max(peak, process.memoryUsage().arrayBuffers - baseline)
    }
    const st = a.transport.stats().peers[0]!
    const offeredBytes = offered * 100_000
    expect(offeredBytes).toBeGreaterThan(350 << 20)
    expect(st.state).toBe('open')
    expect(st.droppedMessages).toBeGreaterThan(offered * 0.8)
    expect(st.sentMessages + st.droppedMessages + st.queuedMessages).toBe(offered)
    // The kernel's socket buffers hold a few MB; our queues at most ~2 × queueBytesMax
    // (asserted exactly above, every turn). arrayBuffers also counts dropped frames the GC
    // has not collected yet, which depends on load (76 MB was seen on a busy machine), so
    // the bound here only proves that the >350 MB offered is not retained.
    expect(peak).toBeLessThan(128 << 20)

    // Many tiny messages hit the message bound instead.
    const droppedBefore = st.droppedMessages
    for (let i = 0; i < 5000; i++) a.transport.send(heartbeat(0, 1, i))
    const after = a.transport.stats().peers[0]!
    expect(after.queuedMessages).toBeLessThanOrEqual(1000)
    expect(after.droppedMessages).toBeGreaterThan(droppedBefore)
  })
})
