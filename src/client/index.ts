/**
 * edgestream client: follow an agent run over SSE, resumably.
 *
 * @example
 * import { startRun } from 'https://HOST/client.js';
 * const run = startRun({ endpoint: 'https://HOST', query: 'Hello', persistKey: 'my-run' });
 * for await (const event of run) if (event.type === 'delta') output.append(event.text);
 */
export { AgentRun, AgentRunError, startRun, resumeRun, DEFAULT_HEARTBEAT_MS, type RunOptions } from './run';
export {
  Chat,
  ChatError,
  newChatId,
  type ChatHandle,
  type ChatOptions,
  type ChatView,
  type ChatViewMessage,
  type TurnOptions,
} from './chat';
export { backoffDelay, retryAfterMs, type BackoffOptions } from './backoff';
export { loadHandle, saveHandle, clearHandle, type HandleStorage } from './persist';
export type * from './types';
