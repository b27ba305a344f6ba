/**
 * Where the member sync may send requests (and the member's credentials): a member's FHIR server and token
 * endpoint, never the hub's own neighbourhood. Checked when an endpoint is registered and again before every
 * request a sync makes (a name can resolve elsewhere by then):
 *
 * - `https` only; plain `http` only to the hosts SYNC_HTTP_HOSTS names (a member's private network);
 * - no user name or password in the URL;
 * - no address of this machine (loopback, its own interfaces: the embedded PostgreSQL and FerretDB, the hub),
 *   no link-local (cloud metadata services), unspecified or multicast address, unless SYNC_ALLOWED_HOSTS names
 *   the host;
 * - a page's `next` link stays on the registered origin and under the registered base (credentials are only ever
 *   sent there), and redirects are not followed.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { HubError } from '../errors.ts';

export interface EndpointPolicy {
  /** hosts (`host` or `host:port`) a sync may reach over plain http */
  httpHosts: readonly string[];
  /** hosts (`host` or `host:port`) a sync may reach although they are this machine's or link-local */
  allowedHosts: readonly string[];
}

export const defaultEndpointPolicy: EndpointPolicy = { httpHosts: [], allowedHosts: [] };

const refuse = (message: string): HubError => new HubError('BAD_USER_INPUT', message);

const named = (list: readonly string[], url: URL): boolean => list.includes(url.hostname) || list.includes(url.host) || list.includes(url.hostname.replace(/^\[|\]$/g, ''));

/** This machine's own addresses (every interface, loopback included). */
function ownAddresses(): Set<string> {
  const addresses = new Set<string>(['127.0.0.1', '::1', '0.0.0.0', '::']);
  for (const list of Object.values(networkInterfaces())) for (const item of list ?? []) addresses.add(item.address);
  return addresses;
}

/** Whether an address is loopback, link-local, unspecified or multicast. */
function special(address: string): boolean {
  const v4 = address.startsWith('::ffff:') ? address.slice('::ffff:'.length) : address;
  if (isIP(v4) === 4) {
    const [a, b] = v4.split('.').map(Number) as [number, number];
    return a === 127 || a === 0 || (a === 169 && b === 254) || a >= 224;
  }
  const lower = address.toLowerCase();
  return lower === '::1' || lower === '::' || lower.startsWith('fe8') || lower.startsWith('fe9') || lower.startsWith('fea') || lower.startsWith('feb') || lower.startsWith('ff');
}

/**
 * The URL, when a sync may send a request there (see the top of this file); BAD_USER_INPUT naming `what`
 * otherwise. The message says what is wrong, never what the address answered.
 */
export async function assertEndpoint(raw: string, policy: EndpointPolicy, what: string): Promise<URL> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw refuse(`${what} is not a URL`);
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && (named(policy.httpHosts, url) || named(policy.allowedHosts, url)))) {
    throw refuse(`${what} must be an https URL (plain http only to the hosts SYNC_HTTP_HOSTS names)`);
  }
  if (url.username || url.password) throw refuse(`${what} must not carry a user name or password; give the credentials as the endpoint's auth`);
  if (named(policy.allowedHosts, url)) return url;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  let addresses: string[];
  try {
    addresses = isIP(host) ? [host] : (await lookup(host, { all: true })).map((found) => found.address);
  } catch {
    throw refuse(`${what}: the host ${host} cannot be resolved`);
  }
  const own = ownAddresses();
  if (addresses.some((address) => special(address) || own.has(address))) {
    throw refuse(`${what} points at this machine, a link-local or another reserved address; a member's server is elsewhere (SYNC_ALLOWED_HOSTS allows a host explicitly)`);
  }
  return url;
}

/** A `next` link of a member's answer, when it stays on the registered origin and under its base. */
export function assertWithin(link: string, base: string, what: string): string {
  let url: URL;
  try {
    url = new URL(link, `${base}/`);
  } catch {
    throw refuse(`${what} is not a URL`);
  }
  const registered = new URL(`${base}/`);
  if (url.origin !== registered.origin || !url.pathname.startsWith(registered.pathname.replace(/\/+$/, ''))) {
    throw refuse(`${what} leaves the member's registered server ${registered.origin}${registered.pathname}; the sync does not follow it`);
  }
  return url.toString();
}
