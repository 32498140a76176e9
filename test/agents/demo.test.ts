import { demoAgent } from '../../src/agents/demo/demo';
import { agentContractTests } from './contract';

agentContractTests('demo', () => ({
  agent: demoAgent,
  env: {},
  input: { requestId: 'r', query: 'contract', messages: [], options: { tokens: 20, delayMs: 0 } },
  longInput: { requestId: 'r', query: 'contract', messages: [], options: { tokens: 1000, delayMs: 10 } },
}));
