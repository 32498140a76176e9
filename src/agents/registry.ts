/**
 * Every agent this build knows, by the name a profile's `agent` uses. To add
 * one, import it and put it in AGENTS (one line each): see docs/agents.md.
 */
import { anthropicAgent } from './anthropic';
import { demoAgent } from './demo';
import { echoAgent } from './examples/echo';
import { externalAgent } from './external';
import { openaiAgent } from './openai';
import { relayAgent } from './relay/relay';
import type { Agent } from './types';
import { workersAiAgent } from './workers-ai';

const AGENTS: readonly Agent<any, any>[] = [demoAgent, openaiAgent, workersAiAgent, anthropicAgent, echoAgent, externalAgent, relayAgent];

const BY_NAME: ReadonlyMap<string, Agent<any, any>> = new Map(AGENTS.map((agent) => [agent.name, agent]));

export function getAgent(name: string): Agent<any, any> | undefined {
  return BY_NAME.get(name);
}
