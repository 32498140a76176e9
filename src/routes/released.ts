/**
 * `/widget@<version>.js` and `/client@<version>.js`: the released files kept
 * in static/v/<version>/, served by the Worker so that only a file that
 * exists is cached as immutable. (Served from static/_headers alone, a
 * version not released yet answered 404 with `max-age=31536000, immutable`,
 * and a CDN or browser that asked early would keep that 404 for a year.)
 */
import { Hono } from 'hono';
import type { AppEnv } from '../env';
import { ApiError, errorResponse } from '../errors';

export const released = new Hono<{ Bindings: AppEnv }>();

const IMMUTABLE = 'public, max-age=31536000, immutable';
const FILE = /^\/(widget|client)@(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)\.js$/;

released.on(['GET', 'HEAD'], '/:file{(?:widget|client)@[^/]+\\.js}', async (c) => {
  const path = new URL(c.req.url).pathname;
  const match = FILE.exec(path);
  const found = match ? await c.env.ASSETS.fetch(new URL(`/v/${match[2]}/${match[1]}.js`, c.req.url), { method: c.req.method }) : null;
  if (!found?.ok) {
    const res = errorResponse(c, new ApiError('not_found', `no released file ${path}`));
    // A version may be released later: never cache its absence for long.
    res.headers.set('Cache-Control', 'no-store');
    res.headers.set('Access-Control-Allow-Origin', '*');
    return res;
  }
  return new Response(found.body, {
    headers: {
      'Content-Type': 'text/javascript; charset=utf-8',
      'Cache-Control': IMMUTABLE,
      'Access-Control-Allow-Origin': '*',
      ...(found.headers.get('ETag') ? { ETag: found.headers.get('ETag')! } : {}),
    },
  });
});
