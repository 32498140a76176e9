/**
 * Remember the run a page is following, so a reload resumes it instead of
 * losing it. sessionStorage by default: per tab, gone when the tab closes,
 * which is the lifetime of "the answer I was reading". The token is a
 * secret; it stays in this tab's storage and is never put in a URL here.
 * Only the handle's three fields are written: never a start's startSecret,
 * which the token replaces once the run is identified.
 */
import type { RunHandle } from './types';

export type HandleStorage = Pick<Storage, 'getItem' | 'setItem' | 'removeItem'>;

function storageOr(storage?: HandleStorage): HandleStorage | undefined {
  if (storage) return storage;
  try {
    return globalThis.sessionStorage ?? undefined;
  } catch {
    return undefined; // storage blocked (privacy settings, sandboxed iframe)
  }
}

export function saveHandle(key: string, handle: RunHandle, storage?: HandleStorage): void {
  try {
    const { requestId, token, lastEventId } = handle;
    storageOr(storage)?.setItem(key, JSON.stringify({ requestId, token, lastEventId }));
  } catch {
    // quota or blocked storage: resuming after reload is a convenience, not a requirement
  }
}

export function loadHandle(key: string, storage?: HandleStorage): RunHandle | null {
  try {
    const raw = storageOr(storage)?.getItem(key);
    if (!raw) return null;
    const h = JSON.parse(raw) as Partial<RunHandle>;
    if (typeof h.requestId !== 'string' || typeof h.token !== 'string' || !Number.isInteger(h.lastEventId)) return null;
    return { requestId: h.requestId, token: h.token, lastEventId: h.lastEventId! };
  } catch {
    return null;
  }
}

export function clearHandle(key: string, storage?: HandleStorage): void {
  try {
    storageOr(storage)?.removeItem(key);
  } catch {
    // nothing to clear
  }
}
