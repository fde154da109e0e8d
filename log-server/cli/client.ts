// A small JSON-over-HTTP client for the command line: tries the servers in order,
// follows 421 not_leader to the leader, and turns error bodies into messages.
import { request } from 'undici'

export class CliError extends Error {
  constructor(
    message: string,
    readonly code: string = 'error',
    readonly status = 0,
  ) {
    super(message)
  }
}

interface ErrorBody {
  error?: { code?: string; message?: string; leader?: string }
}

export class CliClient {
  constructor(
    readonly servers: readonly string[],
    readonly timeoutMs = 10_000,
  ) {
    if (servers.length === 0) throw new CliError('no servers given (use --servers or QUIPU_SERVERS)')
  }

  /** GET/POST to one server, JSON in and out. */
  async call<T>(server: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; json: T & ErrorBody }> {
    const res = await request(new URL(path, server), {
      method,
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
    })
    const text = await res.body.text()
    let json: T & ErrorBody
    try {
      json = JSON.parse(text) as T & ErrorBody
    } catch {
      throw new CliError(`${server}${path}: answered ${res.statusCode} with a body that is not JSON: ${text.slice(0, 200)}`)
    }
    return { status: res.statusCode, json }
  }

  /** Call the cluster: any server, following the leader when a route needs it. */
  async cluster<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    const tried = new Set<string>()
    const queue = [...this.servers]
    let last: Error | null = null
    for (let hops = 0; hops < 10 && queue.length > 0; hops++) {
      const server = queue.shift()!
      tried.add(server)
      let r: { status: number; json: T & ErrorBody }
      try {
        r = await this.call<T>(server, method, path, body)
      } catch (e) {
        last = e instanceof CliError ? e : new CliError(`${server}: ${(e as Error).message}`, 'unreachable')
        continue
      }
      if (r.status < 300) return r.json
      const err = r.json.error
      if (r.status === 421 && err?.leader) {
        if (!tried.has(err.leader)) queue.unshift(err.leader)
        continue
      }
      last = new CliError(`${err?.code ?? r.status}: ${err?.message ?? 'request failed'}`, err?.code ?? 'error', r.status)
      if (r.status !== 503) throw last
    }
    throw last ?? new CliError('no server answered')
  }
}
