// The agent contract suite against the example agent: the file docs/agents.md
// tells you to copy for your own (change the import and the inputs).
import { EchoOptions, echoAgent } from '../../src/agents/examples/echo';
import { agentContractTests } from './contract';

agentContractTests('echo', () => ({
  agent: echoAgent,
  env: {},
  // A run gets its options parsed by the agent's schema, defaults filled in.
  input: { requestId: 'r', query: 'resumable streams keep every word', messages: [], options: EchoOptions.parse({ delayMs: 0 }) },
  // Long enough to be cancelled after its third delta.
  longInput: { requestId: 'r', query: 'word '.repeat(200), messages: [], options: EchoOptions.parse({ delayMs: 10 }) },
  // The profile's own keys, as ctx.settings (leave it out if your agent has none).
  settings: { prefix: 'You said:' },
}));
