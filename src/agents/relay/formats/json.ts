/**
 * `json`: the generic mapping for a stream of JSON messages: the text of
 * each is at the dotted path `field` (`choices.0.delta.content`, say).
 *
 * | message | here |
 * | --- | --- |
 * | a string at `field` | `delta` |
 * | no string there | dropped |
 * | `[DONE]`, or the end of the body | `result` with the whole text |
 * | `event: error` | `upstream_error` |
 * | not JSON | `upstream_malformed` (`upstream_incomplete` when the body ended in it) |
 */
import { parseJson, type RelayFormat } from './format';
import { PiecesReader } from './text';

/** The value at a dotted path; digits index arrays. */
export function valueAt(value: unknown, path: string): unknown {
  let at: unknown = value;
  for (const key of path.split('.')) {
    if (at === null || typeof at !== 'object') return undefined;
    at = Object.hasOwn(at, key) ? (at as Record<string, unknown>)[key] : undefined;
  }
  return at;
}

export const jsonFormat: RelayFormat = {
  name: 'json',
  idsAreCursors: true,
  create: (settings, restored) => {
    const field = settings.field ?? '';
    return new PiecesReader((message) => {
      const piece = valueAt(parseJson(message), field);
      return typeof piece === 'string' ? piece : undefined;
    }, restored);
  },
};
