/**
 * A TCP proxy that cuts every live connection on a timer: the network a
 * mobile client lives on, made repeatable. Both sides see a reset.
 */
import { createServer, connect, type Socket } from 'node:net';

export interface CuttingProxy {
  url: string;
  /** How many connections were cut mid-flight so far. */
  cuts: () => number;
  connections: () => number;
  close: () => Promise<void>;
}

/**
 * `armed` (default: always) gates the cuts: a test that starts a run through
 * the proxy arms it once the start's answer is in, since a start whose
 * answer is lost cannot be attached to (the token was in it) and a slow
 * machine could otherwise cut the very first POST.
 */
export async function startCuttingProxy(targetPort: number, cutEveryMs: number, armed: () => boolean = () => true): Promise<CuttingProxy> {
  const live = new Set<[Socket, Socket]>();
  let cuts = 0;
  let connections = 0;
  const server = createServer((client) => {
    connections++;
    const upstream = connect(targetPort, '127.0.0.1');
    const pair: [Socket, Socket] = [client, upstream];
    live.add(pair);
    client.pipe(upstream);
    upstream.pipe(client);
    const drop = () => {
      live.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
  });
  const timer = setInterval(() => {
    if (!armed()) return;
    for (const [client, upstream] of live) {
      cuts++;
      client.resetAndDestroy();
      upstream.destroy();
    }
    live.clear();
  }, cutEveryMs);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    cuts: () => cuts,
    connections: () => connections,
    close: async () => {
      clearInterval(timer);
      for (const [client, upstream] of live) {
        client.destroy();
        upstream.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
