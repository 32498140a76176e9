/**
 * The floor: a Worker whose Durable Object streams the same demo events with
 * the same batching and no storage at all. What it costs over the bare
 * Worker is the Durable Object hop alone, the least this architecture can
 * cost. A POST crosses the hop by `stub.fetch()`, or with `?hop=rpc` by an
 * RPC method returning the stream (`?store=1`: FloorSqlObject); `GET /open` says how many streams the
 * object still has open (to see whether a client's disconnect reaches it).
 */
import { DurableObject } from 'cloudflare:workers';
import { type DemoStreamBody, SSE_RESPONSE_HEADERS, demoStream } from './demo-stream';

interface FloorEnv {
  FLOOR: DurableObjectNamespace<FloorObject>;
  FLOOR_SQL: DurableObjectNamespace<FloorSqlObject>;
}

export class FloorObject extends DurableObject<FloorEnv> {
  #open = 0;

  override async fetch(request: Request): Promise<Response> {
    return new Response(this.stream((await request.json()) as DemoStreamBody), { headers: SSE_RESPONSE_HEADERS });
  }

  stream(body: DemoStreamBody): ReadableStream<Uint8Array> {
    this.#open++;
    return demoStream(body, () => this.#open--);
  }

  open(): number {
    return this.#open;
  }
}

/**
 * The floor with the least storage: one row in a SQLite-backed object before
 * the stream starts (`?store=1`). What it costs over the floor is what any
 * storage costs: the database, one commit, the output gate holding the
 * answer until that commit is durable.
 */
export class FloorSqlObject extends FloorObject {
  override stream(body: DemoStreamBody): ReadableStream<Uint8Array> {
    this.ctx.storage.sql.exec('CREATE TABLE IF NOT EXISTS started (at INTEGER NOT NULL)');
    this.ctx.storage.sql.exec('INSERT INTO started (at) VALUES (?)', Date.now());
    return super.stream(body);
  }
}

export default {
  async fetch(request: Request, env: FloorEnv): Promise<Response> {
    const url = new URL(request.url);
    // One object per stream, as the service has one per run; `?object=` names a shared one.
    const name = url.searchParams.get('object') ?? crypto.randomUUID();
    const ns = url.searchParams.get('store') === '1' ? env.FLOOR_SQL : env.FLOOR;
    const stub = ns.get(ns.idFromName(name));
    if (request.method === 'GET' && url.pathname === '/open') return Response.json({ open: await stub.open() });
    if (url.searchParams.get('hop') === 'rpc') {
      const body = (await request.json()) as DemoStreamBody;
      return new Response(await stub.stream(body), { headers: SSE_RESPONSE_HEADERS });
    }
    return stub.fetch(request);
  },
};
