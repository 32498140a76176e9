/**
 * The baseline: a bare Worker that streams the same demo events, framed by
 * the same encoder, through a TransformStream. No Durable Object, no storage,
 * no resume. What the service costs is measured against this.
 */
import { type DemoStreamBody, SSE_RESPONSE_HEADERS, demoStream } from './demo-stream';

export default {
  async fetch(request: Request): Promise<Response> {
    const body = (await request.json()) as DemoStreamBody;
    return new Response(demoStream(body), { headers: SSE_RESPONSE_HEADERS });
  },
};
