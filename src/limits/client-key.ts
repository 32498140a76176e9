/**
 * The key an anonymous client is limited by, from its address
 * (`CF-Connecting-IP`): an IPv4 address as is, an IPv6 address reduced to
 * its /64. One IPv6 subscriber is usually handed a whole /64 (RFC 6177
 * advises even more), so limiting single IPv6 addresses would let anyone
 * rotate through 2^64 of them for free. Pure functions, no I/O.
 */

/** Bits of an IPv6 address that name one subscriber's network: the /64. */
const IPV6_PREFIX_GROUPS = 4;
const IPV6_GROUPS = 8;

/**
 * The limiting key for a client address, or null when no limit applies.
 *
 * Null for loopback: Cloudflare's edge always sets `CF-Connecting-IP` to the
 * public address the connection came from, so loopback is never a client
 * through the edge; it is local dev, the test suites and the benchmarks,
 * which must not be throttled. Null also for a missing or malformed value:
 * the edge never sends one, so that too is a local or direct call, and a
 * shared "unknown" bucket would let one such caller lock out all the others.
 *
 * @param ip the value of `CF-Connecting-IP` (or undefined when absent)
 * @returns `1.2.3.4`, `2001:db8:1:2::/64`, or null
 * @example clientKey('::ffff:203.0.113.7') // '203.0.113.7'
 * @example clientKey('2001:DB8:1:2:aaaa::1') // '2001:db8:1:2::/64'
 */
export function clientKey(ip: string | undefined): string | null {
  if (ip === undefined) return null;
  const addr = parseIp(ip);
  if (!addr || addrIsLoopback(addr)) return null;
  if (addr.kind === 'v4') return addr.octets.join('.');
  const prefix = addr.groups.slice(0, IPV6_PREFIX_GROUPS).concat([0, 0, 0, 0]);
  return `${formatIpv6(prefix)}/64`;
}

/**
 * Whether an address is loopback: 127.0.0.0/8, `::1`, or an IPv4-mapped
 * `::ffff:127.x.y.z`. A malformed value is not loopback.
 */
export function isLoopback(ip: string): boolean {
  const addr = parseIp(ip);
  return addr !== null && addrIsLoopback(addr);
}

// ---- parsing ---------------------------------------------------------------

type Addr = { kind: 'v4'; octets: number[] } | { kind: 'v6'; groups: number[] };

function addrIsLoopback(addr: Addr): boolean {
  if (addr.kind === 'v4') return addr.octets[0] === 127;
  return addr.groups.every((g, i) => g === (i === IPV6_GROUPS - 1 ? 1 : 0));
}

/** An IPv4 or IPv6 address; IPv4-mapped IPv6 comes back as IPv4. */
function parseIp(raw: string): Addr | null {
  const text = raw.trim();
  if (text.includes(':')) {
    const groups = parseIpv6(text);
    if (!groups) return null;
    // ::ffff:a.b.c.d (or ::ffff:xxxx:xxxx): an IPv4 client on a dual-stack socket.
    if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
      const [hi = 0, lo = 0] = groups.slice(6);
      return { kind: 'v4', octets: [hi >> 8, hi & 0xff, lo >> 8, lo & 0xff] };
    }
    return { kind: 'v6', groups };
  }
  const octets = parseIpv4(text);
  return octets ? { kind: 'v4', octets } : null;
}

/** Dotted quad, decimal only: a leading zero (`010`) is refused, as octal readings of it differ. */
function parseIpv4(text: string): number[] | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  const octets: number[] = [];
  for (const part of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part)) return null;
    const n = Number(part);
    if (n > 255) return null;
    octets.push(n);
  }
  return octets;
}

/** Eight 16-bit groups, from any RFC 4291 text form (`::`, embedded IPv4, a `%zone`, any case). */
function parseIpv6(text: string): number[] | null {
  // A zone id (`fe80::1%eth0`) names the local interface, not the address.
  const zone = text.indexOf('%');
  const addr = zone === -1 ? text : zone > 0 && zone < text.length - 1 ? text.slice(0, zone) : '';
  if (addr === '') return null;
  const halves = addr.split('::');
  if (halves.length > 2) return null;
  const head = groupsOf(halves[0] ?? '', halves.length === 1);
  const tail = halves.length === 2 ? groupsOf(halves[1] ?? '', true) : [];
  if (!head || !tail) return null;
  const missing = IPV6_GROUPS - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  return [...head, ...Array<number>(halves.length === 2 ? missing : 0).fill(0), ...tail];
}

/**
 * The groups of one side of `::`. Only the last group of the whole address
 * may be a dotted IPv4 (two groups); `mayEndWithIpv4` says this side ends it.
 */
function groupsOf(side: string, mayEndWithIpv4: boolean): number[] | null {
  if (side === '') return [];
  const parts = side.split(':');
  const groups: number[] = [];
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] ?? '';
    if (i === parts.length - 1 && mayEndWithIpv4 && part.includes('.')) {
      const v4 = parseIpv4(part);
      if (!v4) return null;
      const [a = 0, b = 0, c = 0, d = 0] = v4;
      groups.push((a << 8) | b, (c << 8) | d);
    } else if (/^[0-9a-f]{1,4}$/i.test(part)) {
      groups.push(parseInt(part, 16));
    } else {
      return null;
    }
  }
  return groups;
}

/** RFC 5952 text: lowercase, no leading zeros, the longest run of 2+ zero groups as `::` (the first if tied). */
function formatIpv6(groups: number[]): string {
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < groups.length; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < groups.length && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best === -1) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}
