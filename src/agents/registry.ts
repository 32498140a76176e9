/**
 * Every agent this build knows, by the name a profile's `agent` uses. To add
 * one, import it and put it in AGENTS (one line each): see docs/agents.md.
 */
import { anthropicAgent } from './anthropic/anthropic';
import { demoAgent } from './demo/demo';
import { echoAgent } from './examples/echo';
import { externalAgent } from './external/external';
import { openaiAgent } from './openai/openai';
import { relayAgent } from './relay/relay';
import type { AnyAgent } from './types';
import { workersAiAgent } from './workers-ai/workers-ai';

const AGENTS: readonly AnyAgent[] = [demoAgent, openaiAgent, workersAiAgent, anthropicAgent, echoAgent, externalAgent, relayAgent];

const BY_NAME: ReadonlyMap<string, AnyAgent> = new Map(AGENTS.map((agent) => [agent.name, agent]));

export function getAgent(name: string): AnyAgent | undefined {
  return BY_NAME.get(name);
}
