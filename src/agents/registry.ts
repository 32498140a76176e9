/**
 * Every agent this build knows. `GET /v1/agents` lists those configured on
 * the deployment; `POST /v1/runs` refuses the rest.
 */
import type { AppEnv } from '../env';
import { demoAgent } from './demo';
import { openaiAgent } from './openai';
import type { Agent } from './types';
import { workersAiAgent } from './workers-ai';

export const DEFAULT_AGENT = 'demo';

const AGENTS: ReadonlyMap<string, Agent<any>> = new Map<string, Agent<any>>(
  [demoAgent, openaiAgent, workersAiAgent].map((agent) => [agent.name, agent]),
);

export function getAgent(name: string): Agent<any> | undefined {
  return AGENTS.get(name);
}

export function listAgents(env: AppEnv): { name: string; description: string; default: boolean }[] {
  return [...AGENTS.values()]
    .filter((agent) => agent.notConfigured(env) === null)
    .map((agent) => ({ name: agent.name, description: agent.description, default: agent.name === DEFAULT_AGENT }));
}
