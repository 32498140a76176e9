/**
 * A limiter whose binding is missing from a deployment must not fail
 * silently: the deployment then runs without that protection, and its
 * operator should see so in the logs. Once per isolate and binding, so a
 * busy isolate does not flood the log with the same line.
 */

const warned = new Set<string>();

/**
 * Log, once per isolate, that `binding` is missing and what goes unprotected.
 * @param binding the binding's name in wrangler.toml, e.g. `START_LIMITER`
 * @param unprotected what this deployment therefore does not limit, e.g. `starts per client`
 */
export function warnMissingBinding(binding: string, unprotected: string): void {
  if (warned.has(binding)) return;
  warned.add(binding);
  console.warn(`binding ${binding} is missing: this deployment is NOT limiting ${unprotected}; add it to wrangler.toml (see README)`);
}

/** For tests: forget which warnings were given, so each test sees its own. */
export function resetMissingBindingWarnings(): void {
  warned.clear();
}
