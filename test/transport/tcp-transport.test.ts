// Three transports on 127.0.0.1 talking as replicas do: everything arrives intact and
// in order while the peers are up; sends to a peer that is down are dropped (counted,
// never thrown) and traffic resumes by itself when the peer comes back.

import { afterEach, describe, expect, it } from 'vitest'
import { createTcpTransport } from '../../log-server/transport/tcp-transport.ts'
import type { Message } from '../../log-server/paxos/types.ts'
import { CLUSTER, HOST, binaries, collectingLogger, everyMessage, freePorts, heartbeat, makeNode, sleep, waitFor } from './helpers.ts'
import type { Node } from './helpers.ts'

const open: { close(): Promise<void> }[] = []
function track<T extends { close(): Promise<void> }>(x: T): T {
  open.push(x)
  return x
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((x) => x.close()))
})

async function startCluster(n: number): Promise<{ nodes: Node[]; ports: number[] }> {
  const ports = await freePorts(n)
  const nodes = ports.map((_, id) => makeNode(id, ports))
  for (const node of nodes) track(node.transport)
  await Promise.all(nodes.map((node) => node.transport.start()))
  await waitFor(() => nodes.every((a) => nodes.every((b) => a === b || a.transport.connected(b.id))), 'all links up')
  return { nodes, ports }
}

function seqs(msgs: readonly Message[], from: number): number[] {
  return msgs.filter((m) => m.from === from && m.type === 'heartbeat').map((m) => (m.type === 'heartbeat' ? m.commitSlot : -1))
}

describe('tcp transport, three replicas', () => {
  it('delivers a message of every type between every pair, binary data intact', async () => {
    const { nodes } = await startCluster(3)
    for (const a of nodes) for (const b of nodes) if (a !== b) for (const m of everyMessage(a.id, b.id)) a.transport.send(m)
    const perNode = everyMessage(0, 1).length * 2
    await waitFor(() => nodes.every((n) => n.received.length === perNode), 'every message')
    for (const b of nodes) {
      for (const a of nodes) {
        if (a === b) continue
        expect(b.received.filter((m) => m.from === a.id)).toEqual(everyMessage(a.id, b.id))
      }
      for (const bin of binaries(b.received)) expect(Object.getPrototypeOf(bin)).toBe(Uint8Array.prototype)
    }
    const st = nodes[0]!.transport.stats()
    expect(st.peers.map((p) => [p.peer, p.state, p.inbound, p.sentMessages, p.receivedMessages, p.droppedMessages])).toEqual([
      [1, 'open', true, 13, 13, 0],
      [2, 'open', true, 13, 13, 0],
    ])
    expect(st.peers[0]!.sentBytes).toBe(nodes[1]!.transport.stats().peers[0]!.receivedBytes)
  })

  it('shares one SlotValue encoding when an accept is broadcast', async () => {
    const { nodes } = await startCluster(3)
    const [a, b, c] = nodes as [Node, Node, Node]
    const value = everyMessage(0, 1).find((m) => m.type === 'accept')
    if (value?.type !== 'accept') throw new Error('no accept')
    for (const to of [1, 2]) a.transport.send({ ...value, to })
    await waitFor(() => b.received.length === 1 && c.received.length === 1, 'broadcast')
    expect(a.transport.valueEncodingsShared).toBe(1)
    expect(b.received[0]).toEqual(value)
    expect(c.received[0]).toEqual({ ...value, to: 2 })
  })

  it('preserves order per connection and writes one turn of sends at once', async () => {
    const { nodes } = await startCluster(3)
    const [a, b, c] = nodes as [Node, Node, Node]
    const N = 20_000
    // Interleave two senders to one receiver over several turns.
    for (let turn = 0; turn < 4; turn++) {
      const writes = a.transport.stats().peers.find((p) => p.peer === 2)!.writes
      for (let i = turn * (N / 4); i < (turn + 1) * (N / 4); i++) {
        a.transport.send(heartbeat(0, 2, i))
        b.transport.send(heartbeat(1, 2, i))
      }
      await new Promise((r) => setImmediate(r))
      expect(a.transport.stats().peers.find((p) => p.peer === 2)!.writes).toBe(writes + 1)
      await sleep(1)
    }
    await waitFor(() => c.received.length === 2 * N, 'all heartbeats', 20_000)
    const expected = Array.from({ length: N }, (_, i) => i)
    expect(seqs(c.received, 0)).toEqual(expected)
    expect(seqs(c.received, 1)).toEqual(expected)
    expect(a.transport.stats().peers.find((p) => p.peer === 2)?.droppedMessages).toBe(0)
  })

  it('a peer down at start gets messages once it comes up', async () => {
    const ports = await freePorts(3)
    const nodes = ports.map((_, id) => makeNode(id, ports))
    const [a, b, c] = nodes as [Node, Node, Node]
    track(a.transport)
    track(b.transport)
    await a.transport.start()
    await b.transport.start()
    await waitFor(() => a.transport.connected(1) && b.transport.connected(0), 'a-b up')
    expect(a.transport.connected(2)).toBe(false)
    // Sends to the absent peer are dropped and counted, never thrown.
    for (let i = 0; i < 100; i++) a.transport.send(heartbeat(0, 2, i))
    const before = a.transport.stats().peers.find((p) => p.peer === 2)
    expect(before?.droppedMessages).toBe(100)
    expect(before?.state === 'backoff' || before?.state === 'connecting').toBe(true)
    expect(a.logger.text()).toMatch(/cannot connect to peer/)
    // Logged once, not once per redial.
    await sleep(400)
    expect(a.logger.lines.filter((l) => l.msg.includes('cannot connect') && l.fields['peer'] === 2).length).toBe(1)

    track(c.transport)
    await c.transport.start()
    await waitFor(() => a.transport.connected(2) && c.transport.connected(0) && b.transport.connected(2), 'c linked', 5_000)
    a.transport.send(heartbeat(0, 2, 1000))
    c.transport.send(heartbeat(2, 0, 2000))
    await waitFor(() => c.received.length === 1 && a.received.length === 1, 'messages after reconnect')
    expect(seqs(c.received, 0)).toEqual([1000])
    expect(seqs(a.received, 2)).toEqual([2000])
  })

  it('a peer killed mid-stream: sends drop without exceptions, and resume when it returns', async () => {
    const { nodes, ports } = await startCluster(3)
    const [a, , c] = nodes as [Node, Node, Node]
    let n = 0
    let threw: unknown = null
    let running = true
    const pump = (async () => {
      while (running) {
        try {
          for (let k = 0; k < 50; k++) a.transport.send(heartbeat(0, 2, n++))
        } catch (e) {
          threw = e
        }
        await sleep(1)
      }
    })()
    try {
      await waitFor(() => c.received.length > 500, 'stream flowing')
      await c.transport.close()
      await waitFor(() => !a.transport.connected(2), 'a sees c down')
      const droppedAtDown = a.transport.stats().peers.find((p) => p.peer === 2)!.droppedMessages
      await sleep(200)
      expect(a.transport.stats().peers.find((p) => p.peer === 2)!.droppedMessages).toBeGreaterThan(droppedAtDown)
      expect(a.logger.text()).toMatch(/connection to peer lost/)

      const c2 = makeNode(2, ports)
      track(c2.transport)
      await c2.transport.start()
      await waitFor(() => c2.received.length > 500, 'stream resumed at the restarted peer', 5_000)
      // In order on the new connection, and a suffix of what was sent.
      const got = seqs(c2.received, 0)
      for (let i = 1; i < got.length; i++) expect(got[i]).toBe(got[i - 1]! + 1)
      expect(got[0]!).toBeGreaterThan(seqs(c.received, 0).at(-1)!)
    } finally {
      running = false
      await pump
    }
    expect(threw).toBeNull()
    expect(a.transport.stats().peers.find((p) => p.peer === 2)!.connects).toBe(2)
  })

  it('close is idempotent and send after close only counts drops', async () => {
    const { nodes } = await startCluster(3)
    const a = nodes[0]!
    await Promise.all([a.transport.close(), a.transport.close()])
    expect(() => a.transport.send(heartbeat(0, 1, 1))).not.toThrow()
    expect(a.transport.connected(1)).toBe(false)
    expect(a.transport.stats().peers.every((p) => p.state === 'idle')).toBe(true)
  })

  it('send never throws on unroutable or unencodable messages', async () => {
    const { nodes } = await startCluster(3)
    const a = nodes[0]!
    a.transport.send(heartbeat(0, 0, 1)) // to itself
    a.transport.send(heartbeat(0, 9, 1)) // unknown replica
    const bad = { ...heartbeat(0, 1, 1), readId: 10n } as unknown as Message // bigint: msgpack refuses
    expect(() => a.transport.send(bad)).not.toThrow()
    const st = a.transport.stats()
    expect(st.unroutableMessages).toBe(2)
    expect(st.peers.find((p) => p.peer === 1)!.droppedMessages).toBe(1)
    expect(a.logger.text()).toMatch(/could not be encoded/)
  })

  it('binds port 0 and learns peer addresses after start', async () => {
    const logger = collectingLogger()
    const mk = (id: number) =>
      track(createTcpTransport({ id, cluster: CLUSTER, listen: { host: HOST, port: 0 }, peers: [{ id: 1 - id, host: HOST, port: 0 }], logger, limits: { reconnectDelayMaxMs: 100 } }))
    const a = mk(0)
    const b = mk(1)
    await a.start()
    await b.start()
    expect(a.address().port).toBeGreaterThan(0)
    // Port 0 = address unknown: not dialed, and no log noise.
    expect(a.stats().peers[0]!.state).toBe('idle')
    expect(logger.lines).toEqual([])
    a.setPeerAddress(1, HOST, b.address().port)
    b.setPeerAddress(0, HOST, a.address().port)
    await waitFor(() => a.connected(1) && b.connected(0), 'links after setPeerAddress')
    const got: Message[] = []
    b.onMessage((m) => got.push(m))
    a.send(heartbeat(0, 1, 5))
    await waitFor(() => got.length === 1, 'message')
    expect(() => a.setPeerAddress(7, HOST, 1)).toThrow(/not a configured peer/)
  })

  it('a redialing peer replaces its old inbound connection', async () => {
    const { nodes, ports } = await startCluster(3)
    const [a, b] = nodes as [Node, Node, Node]
    // Point a at c's port and back: a's outbound to b is redialed, b keeps only the newest.
    a.transport.setPeerAddress(1, HOST, ports[2]!)
    a.transport.setPeerAddress(1, HOST, ports[1]!)
    await waitFor(() => a.transport.connected(1), 'redialed')
    a.transport.send(heartbeat(0, 1, 42))
    await waitFor(() => b.received.length === 1, 'message on the new connection')
    expect(b.transport.stats().peers.find((p) => p.peer === 0)!.inbound).toBe(true)
  })
})

describe('options', () => {
  it('rejects nonsense with the field name', () => {
    const base = { id: 0, cluster: 'c', listen: { host: HOST, port: 7000 }, peers: [{ id: 1, host: HOST, port: 7001 }] }
    expect(() => createTcpTransport({ ...base, cluster: '' })).toThrow(/cluster/)
    expect(() => createTcpTransport({ ...base, id: -1 })).toThrow(/id/)
    expect(() => createTcpTransport({ ...base, listen: { host: HOST, port: 70_000 } })).toThrow(/listen.port/)
    expect(() => createTcpTransport({ ...base, peers: [...base.peers, { id: 1, host: HOST, port: 7002 }] })).toThrow(/twice/)
    expect(() => createTcpTransport({ ...base, limits: { queueMessagesMax: 0 } })).toThrow(/queueMessagesMax/)
    expect(() => createTcpTransport({ ...base, limits: { frameBytesMax: 2 << 20, queueBytesMax: 1 << 20 } })).toThrow(/frameBytesMax/)
    expect(() => createTcpTransport({ ...base, limits: { reconnectDelayMinMs: 500, reconnectDelayMaxMs: 100 } })).toThrow(/reconnectDelayMinMs/)
    try {
      createTcpTransport({ ...base, cluster: '' })
    } catch (e) {
      expect((e as { code?: string }).code).toBe('bad_config')
    }
  })

  it('close during start releases the port', async () => {
    const [p0, p1] = await freePorts(2)
    const logger = collectingLogger()
    const a = createTcpTransport({ id: 0, cluster: 'c', listen: { host: HOST, port: p0! }, peers: [{ id: 1, host: HOST, port: p1! }], logger })
    const started = a.start()
    await a.close()
    await started
    expect(a.connected(1)).toBe(false)
    const b = track(createTcpTransport({ id: 0, cluster: 'c', listen: { host: HOST, port: p0! }, peers: [{ id: 1, host: HOST, port: p1! }], logger }))
    await b.start()
  })

  it('start rejects when the port is taken', async () => {
    const [p0, p1] = await freePorts(2)
    const logger = collectingLogger()
    const a = track(createTcpTransport({ id: 0, cluster: 'c', listen: { host: HOST, port: p0! }, peers: [{ id: 1, host: HOST, port: p1! }], logger }))
    const b = track(createTcpTransport({ id: 1, cluster: 'c', listen: { host: HOST, port: p0! }, peers: [{ id: 0, host: HOST, port: p0! }], logger }))
    await a.start()
    await expect(b.start()).rejects.toThrow(/EADDRINUSE/)
  })
})
