// A page as a Vite or Next.js app would write it: the AI SDK's own useChat
// and DefaultChatTransport, unmodified, pointed at edgestream's /v1/chat.
// The chat id comes from the URL (?chat=); the conversation is loaded from
// the server before useChat mounts, and `resume: true` picks up a running
// answer after a reload. The test drives it through window.chatTest.
import { useChat } from '@ai-sdk/react';
import { DefaultChatTransport, type UIMessage } from 'ai';
import { useEffect } from 'react';
import { createRoot } from 'react-dom/client';

const endpoint = (window as unknown as { ENDPOINT: string }).ENDPOINT;
const chatId = new URL(location.href).searchParams.get('chat')!;
const tokenKey = `edgestream-chat-token:${chatId}`;

/** The chat's credential: the token of its first turn's transient `data-chat` part (an open chat needs none). */
const authHeaders = (): Record<string, string> => {
  const token = localStorage.getItem(tokenKey);
  return token ? { Authorization: `Bearer ${token}` } : {};
};

const transport = new DefaultChatTransport({
  api: `${endpoint}/v1/chat`,
  headers: authHeaders,
  body: { agent: 'demo' },
});

interface ChatTest {
  send(text: string, options: Record<string, unknown>): void;
  regenerate(options: Record<string, unknown>): void;
  stop(): Promise<number>;
  dataParts: unknown[];
}
const test: ChatTest = { send() {}, regenerate() {}, stop: async () => 0, dataParts: [] };
(window as unknown as { chatTest: ChatTest }).chatTest = test;

function Chat({ initial }: { initial: UIMessage[] }) {
  const chat = useChat({
    id: chatId,
    messages: initial,
    transport,
    resume: true,
    onData: (part) => {
      test.dataParts.push(part);
      const data = part.data as { token?: string };
      if (part.type === 'data-chat' && data.token) localStorage.setItem(tokenKey, data.token);
    },
  });
  useEffect(() => {
    // Not awaited: sendMessage resolves only when the whole answer has streamed.
    test.send = (text, options) => void chat.sendMessage({ text }, { body: { options } });
    test.regenerate = (options) => void chat.regenerate({ body: { options } });
    test.stop = async () => {
      // useChat's stop() only stops reading; the turn is stopped on the server by its own endpoint.
      await chat.stop();
      const res = await fetch(`${endpoint}/v1/chat/${chatId}/stop`, { method: 'POST', headers: authHeaders() });
      return res.status;
    };
  });
  return (
    <div>
      <p id="status">{chat.status}</p>
      <p id="error">{chat.error?.message ?? ''}</p>
      <ol id="messages">
        {chat.messages.map((m) => (
          <li key={m.id} data-id={m.id} data-role={m.role}>
            {m.parts
              .filter((p) => p.type === 'text')
              .map((p) => p.text)
              .join('')}
          </li>
        ))}
      </ol>
    </div>
  );
}

async function main() {
  // The server keeps the conversation: load it (404 is a chat not started yet).
  const res = await fetch(`${endpoint}/v1/chat/${chatId}/messages`, { headers: authHeaders() });
  const initial = res.ok ? ((await res.json()) as { messages: UIMessage[] }).messages : [];
  createRoot(document.getElementById('root')!).render(<Chat initial={initial} />);
}
void main();
