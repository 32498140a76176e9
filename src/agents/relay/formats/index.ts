/** The relay's formats by the name a profile's `format` uses. */
import type { RelayFormatName } from '../settings';
import { aiSdkFormat } from './ai-sdk';
import { deepsearchFormat } from './deepsearch';
import { edgestreamFormat } from './edgestream';
import type { RelayFormat } from './format';
import { genieFormat } from './genie';
import { jsonFormat } from './json';
import { textFormat } from './text';

export const FORMATS: Readonly<Record<RelayFormatName, RelayFormat>> = {
  edgestream: edgestreamFormat,
  'ai-sdk': aiSdkFormat,
  genie: genieFormat,
  deepsearch: deepsearchFormat,
  text: textFormat,
  json: jsonFormat,
};
