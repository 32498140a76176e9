// A small React page using the hook: start, watch the text, unmount/remount.
import { useState } from 'react';
import { createRoot } from 'react-dom/client';
import { useAgentRun } from '../../src/client/react';

const endpoint = (window as unknown as { ENDPOINT: string }).ENDPOINT;

function Chat() {
  const run = useAgentRun({ endpoint, options: { tokens: 150, delayMs: 20 } });
  return (
    <div>
      <button id="start" onClick={() => run.start('react hook question')}>Start</button>
      <button id="cancel" onClick={() => void run.cancel()}>Cancel</button>
      <p id="state">{run.state}</p>
      <p id="run-state">{run.runState ?? ''}</p>
      <p id="status">{run.status?.status ?? ''}</p>
      <ol id="plan">{run.plan.map((s) => <li key={s}>{s}</li>)}</ol>
      <p id="text">{run.text}</p>
    </div>
  );
}

function App() {
  const [shown, setShown] = useState(true);
  return (
    <>
      <button id="toggle" onClick={() => setShown((s) => !s)}>{shown ? 'Unmount' : 'Mount'}</button>
      {shown && <Chat />}
    </>
  );
}

createRoot(document.getElementById('root')!).render(<App />);
