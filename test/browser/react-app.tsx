// A small React page using the hook: components with their own stored runs
// (the default key, "b", and "fast" for a burst of 3000 deltas), which can be
// unmounted and mounted again.
import { useRef, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { useAgentRun } from '../../src/client/react';

const endpoint = (window as unknown as { ENDPOINT: string }).ENDPOINT;

const SLOW = { tokens: 150, delayMs: 20 };

function Chat({ id, hookKey, options = SLOW }: { id: string; hookKey?: string; options?: Record<string, unknown> }) {
  const run = useAgentRun({ endpoint, key: hookKey, options });
  const renders = useRef(0);
  renders.current++;
  return (
    <div id={id}>
      <button type="button" className="start" onClick={() => run.start(`react hook question ${id}`)}>
        Start
      </button>
      <button type="button" className="cancel" onClick={() => void run.cancel().catch(() => {})}>
        Cancel
      </button>
      <button type="button" className="disconnect" onClick={() => run.disconnect()}>
        Disconnect
      </button>
      <p className="state">{run.state}</p>
      <p className="run-state">{run.runState ?? ''}</p>
      <p className="status">{run.status?.status ?? ''}</p>
      <p className="events">{run.events.length}</p>
      <p className="renders">{renders.current}</p>
      <ol className="plan">
        {run.plan.map((s) => (
          <li key={s}>{s}</li>
        ))}
      </ol>
      <p className="text">{run.text}</p>
    </div>
  );
}

function App() {
  const [shown, setShown] = useState(true);
  return (
    <>
      <button type="button" id="toggle" onClick={() => setShown((s) => !s)}>
        {shown ? 'Unmount' : 'Mount'}
      </button>
      {shown && <Chat id="a" />}
      {shown && <Chat id="b" hookKey="b" />}
      {shown && <Chat id="fast" hookKey="fast" options={{ tokens: 3000, delayMs: 0 }} />}
    </>
  );
}

createRoot(document.getElementById('root')!).render(<App />);
