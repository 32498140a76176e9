/**
 * edgestream Worker: the HTTP API under /v1 and the released client files
 * (`/widget@<v>.js`, `/client@<v>.js`); every other static file is served by
 * the assets binding before the Worker is reached.
 */
import { Hono } from 'hono';
import { corsFromConfig } from './cors';
import type { AppEnv } from './env';
import { ApiError, errorResponse } from './errors';
import { chat } from './routes/chat';
import { released } from './routes/released';
import { agents, runs } from './routes/runs';

export { RunObject } from './run/run-object';
export { UsageObject } from './limits/usage-object';
export { ChatObject } from './chat/chat-object';

const app = new Hono<{ Bindings: AppEnv }>();

app.use('/v1/*', corsFromConfig());
app.route('/v1/runs', runs);
app.route('/v1/agents', agents);
app.route('/v1/chat', chat);
app.route('/', released);

app.notFound((c) => errorResponse(c, new ApiError('not_found', `no route for ${c.req.method} ${new URL(c.req.url).pathname}`)));
app.onError((err, c) => errorResponse(c, err));

export default app satisfies ExportedHandler<AppEnv>;
