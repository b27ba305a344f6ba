/**
 * Short-lived access tokens: JWTs signed with HS256 (jose) under TOKEN_SECRET. A token names its client, the
 * organisation it acts for, its scopes and, for the county health app, the one person it is bound to. Every
 * request also checks that the client is still registered and not revoked.
 */
import { randomUUID, webcrypto } from 'node:crypto';
import { SignJWT, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import { HubError } from '../errors.ts';
import type { ClientInfo, ClientKind, ClientRegistry } from './clients.ts';
import { formatScope, narrowScopes, parseScopes, type Scope } from './scopes.ts';

const ISSUER = 'consortium-hub';
const AUDIENCE = 'consortium-hub/graphql';
/** A printable form's link: good for that one form only, never as a bearer token (another audience). */
const FORM_AUDIENCE = 'consortium-hub/referral-form';
/** How long a form link opens its form. */
export const FORM_LINK_SECONDS = 600;

/** Who is calling, as the token says and the registry confirms. */
export interface Caller {
  clientId: string;
  kind: ClientKind;
  /** `Organization/<id>` the client acts for */
  organization?: string;
  scopes: Scope[];
  /** the person a resident token is bound to */
  person?: string;
  tokenId: string;
}

export class TokenService {
  /** The HMAC key, imported once: jose imports a raw key again at every verification (about 0.15 ms each). */
  private readonly key: Promise<webcrypto.CryptoKey>;

  constructor(
    secret: string,
    private readonly ttlSeconds: number,
    private readonly clients: ClientRegistry,
  ) {
    this.key = webcrypto.subtle.importKey('raw', new TextEncoder().encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']);
    this.key.catch(() => {}); // a refused key fails each issue and verify that awaits it, not the process
  }

  async issue(client: ClientInfo, scopes: Scope[], person?: string): Promise<{ token: string; expiresIn: number; scope: string }> {
    const scope = scopes.map(formatScope).join(' ');
    const token = await new SignJWT({ scope, kind: client.kind, reg: client.registration, ...(client.organization ? { org: client.organization } : {}), ...(person ? { person } : {}) })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setSubject(client._id)
      .setJti(randomUUID())
      .setIssuedAt()
      .setExpirationTime(`${this.ttlSeconds}s`)
      .sign(await this.key);
    return { token, expiresIn: this.ttlSeconds, scope };
  }

  /**
   * A link that opens one referral's printable form in a browser for FORM_LINK_SECONDS, as the caller who asked
   * for it (the same scopes, organisation and person; checked again against the registry when it is opened).
   */
  async issueFormLink(caller: Caller, referralId: string): Promise<{ token: string; expiresAt: Date }> {
    const expiresAt = new Date(Date.now() + FORM_LINK_SECONDS * 1000);
    const client = await this.clients.active(caller.clientId);
    if (!client) throw new HubError('UNAUTHENTICATED', 'The client of this access token is revoked or unknown');
    const token = await new SignJWT({ scope: caller.scopes.map(formatScope).join(' '), kind: caller.kind, reg: client.registration, ref: referralId, ...(caller.organization ? { org: caller.organization } : {}), ...(caller.person ? { person: caller.person } : {}) })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuer(ISSUER)
      .setAudience(FORM_AUDIENCE)
      .setSubject(caller.clientId)
      .setJti(randomUUID())
      .setIssuedAt()
      .setExpirationTime(Math.floor(expiresAt.getTime() / 1000))
      .sign(await this.key);
    return { token, expiresAt };
  }

  /** The caller of a form link, for the form it was issued for only; UNAUTHENTICATED otherwise. */
  async verifyFormLink(token: string, referralId: string): Promise<Caller> {
    const payload = await this.payload(token, FORM_AUDIENCE, 'This link to the form');
    if (payload.ref !== referralId) throw new HubError('UNAUTHENTICATED', 'This link opens another referral\'s form');
    return this.callerOf(payload);
  }

  private async payload(token: string, audience: string, what: string): Promise<JWTPayload> {
    if (token.length > 4096) throw new HubError('UNAUTHENTICATED', `${what} is malformed`);
    try {
      return (await jwtVerify(token, await this.key, { issuer: ISSUER, audience, algorithms: ['HS256'] })).payload;
    } catch (error) {
      if (error instanceof joseErrors.JWTExpired) throw new HubError('UNAUTHENTICATED', audience === AUDIENCE ? 'The access token has expired; get a new one at /oauth/token' : `${what} has expired; ask for a new one`);
      throw new HubError('UNAUTHENTICATED', `${what} is not valid`);
    }
  }

  /** The caller of a bearer token; UNAUTHENTICATED for a malformed, tampered, expired or revoked one. */
  async verify(token: string, alongside?: (clientId: string) => void): Promise<Caller> {
    const payload = await this.payload(token, AUDIENCE, 'The access token');
    // Once the signature holds, work that needs only the client id (counting the request) runs beside the
    // registry lookup instead of after it.
    if (typeof payload.sub === 'string') alongside?.(payload.sub);
    return this.callerOf(payload);
  }

  /** The caller a verified token names, as the registry confirms it now. */
  private async callerOf(payload: JWTPayload): Promise<Caller> {
    const client = typeof payload.sub === 'string' ? await this.clients.active(payload.sub) : undefined;
    if (!client) throw new HubError('UNAUTHENTICATED', 'The client of this access token is revoked or unknown');
    // A token belongs to the registration it was issued under: a client id registered again (after a
    // revocation, with other scopes) does not bring its old tokens back.
    if (payload.reg !== client.registration) throw new HubError('UNAUTHENTICATED', 'The access token was issued under an earlier registration of this client; get a new one');
    // And it never carries more than the client holds now.
    const scopes = narrowScopes(parseScopes(client.scopes.join(' ')), parseScopes(String(payload.scope ?? '')));
    if (scopes.length === 0) throw new HubError('UNAUTHENTICATED', 'The client of this access token holds none of its scopes any more');
    return {
      clientId: client._id,
      kind: client.kind,
      ...(client.organization ? { organization: client.organization } : {}),
      scopes,
      ...(typeof payload.person === 'string' ? { person: payload.person } : {}),
      tokenId: String(payload.jti),
    };
  }
}
