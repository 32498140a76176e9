import { describe, expect, it } from 'vitest';
import { clientKey, isLoopback } from '../../src/limits/client-key';

describe('clientKey', () => {
  it.each([
    ['203.0.113.7', '203.0.113.7'],
    ['0.0.0.0', '0.0.0.0'],
    ['255.255.255.255', '255.255.255.255'],
    [' 198.51.100.1 ', '198.51.100.1'],
  ])('keeps an IPv4 address as it is: %s', (ip, key) => expect(clientKey(ip)).toBe(key));

  it.each([
    ['::ffff:203.0.113.7', '203.0.113.7'],
    ['::FFFF:203.0.113.7', '203.0.113.7'],
    ['0:0:0:0:0:ffff:203.0.113.7', '203.0.113.7'],
    ['::ffff:cb00:7107', '203.0.113.7'],
  ])('reads an IPv4-mapped IPv6 address as the IPv4 client: %s', (ip, key) => expect(clientKey(ip)).toBe(key));

  it.each([
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:0db8:0001:0002:0003:0004:0005:0006', '2001:db8:1:2::/64'],
    ['2001:DB8:1:2:AAAA::1', '2001:db8:1:2::/64'],
    ['2001:db8:1:2::', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8::/64'],
    ['2001:db8::1:2:3:4', '2001:db8::/64'],
    ['2001:0:0:1::7', '2001:0:0:1::/64'],
    ['2001:db8:0:1::', '2001:db8:0:1::/64'],
    ['0:1:2:3::', '0:1:2:3::/64'],
    ['fe80::1%eth0', 'fe80::/64'],
    ['fe80::abcd%25', 'fe80::/64'],
    ['64:ff9b::198.51.100.1', '64:ff9b::/64'],
    ['2001:db8:1:2:3:4:198.51.100.1', '2001:db8:1:2::/64'],
    ['::2', '::/64'],
  ])('reduces an IPv6 address to its /64, normalised: %s', (ip, key) => expect(clientKey(ip)).toBe(key));

  it('gives every address of one /64 the same key, and another /64 another', () => {
    expect(clientKey('2001:db8:1:2::1')).toBe(clientKey('2001:db8:1:2:ffff:ffff:ffff:ffff'));
    expect(clientKey('2001:db8:1:2::1')).not.toBe(clientKey('2001:db8:1:3::1'));
  });

  it.each(['127.0.0.1', '127.255.0.9', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', '::ffff:127.1.2.3', '::ffff:7f00:1'])(
    'is null for loopback (local dev, tests, bench): %s',
    (ip) => expect(clientKey(ip)).toBeNull(),
  );

  it.each([
    undefined,
    '',
    ' ',
    'localhost',
    'unknown',
    '1.2.3',
    '1.2.3.4.5',
    '256.1.1.1',
    '01.2.3.4',
    '1.2.3.-4',
    '1.2.3.4:8080',
    '[2001:db8::1]',
    '2001:db8::1::2',
    '2001:db8:1:2:3:4:5:6:7',
    '1::2:3:4:5:6:7:8',
    '2001:db8:1:2:3:4:5',
    ':::',
    ':1::2',
    '1::2:',
    '12345::1',
    'g::1',
    '1.2.3.4::',
    '::1.2.3.256',
    '::1.2.3.4:5',
    'fe80::1%',
    '%eth0',
    '203.0.113.7, 198.51.100.1',
  ])('is null for a missing or malformed value: %s', (ip) => expect(clientKey(ip)).toBeNull());
});

describe('isLoopback', () => {
  it('is true for 127.0.0.0/8, ::1 and mapped 127.x, false for the rest and for garbage', () => {
    for (const ip of ['127.0.0.1', '127.9.9.9', '::1', '::0:1', '::ffff:127.0.0.1']) expect(isLoopback(ip)).toBe(true);
    for (const ip of ['128.0.0.1', '10.0.0.1', '::', '::2', '::ffff:10.0.0.1', '2001:db8::1', 'garbage', ''])
      expect(isLoopback(ip)).toBe(false);
  });
});
