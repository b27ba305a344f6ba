/**
 * Authentication: the OAuth 2.0 client-credentials token endpoint, and the caller behind a bearer token.
 *
 * The county health app (a resident-app client) asks for a token for one resident by adding
 * `patient_identifier` (the resident's national ID, or `system|value` of a member record number) to its
 * token request; the token is then bound to that person and carries only patient/ scopes.
 */
import { REFUSAL_WINDOW_MS, type RefusalLog } from '../audit/refusals.ts';
import { HubError } from '../errors.ts';
import type { PersonDirectory } from '../identity/linking.ts';
import { AccessPolicy } from './access-policy.ts';
import type { ClientRegistry } from './clients.ts';
import { narrowScopes, parseScopes } from './scopes.ts';
import type { Caller, TokenService } from './tokens.ts';

export interface TokenResponse {
  status: number;
  body: Record<string, unknown>;
  headers?: Record<string, string>;
}

const oauthError = (status: number, error: string, description: string): TokenResponse => ({
  status,
  body: { error, error_description: description },
  ...(status === 401 ? { headers: { 'www-authenticate': 'Basic realm="consortium-hub"' } } : {}),
});

/** Failed client authentications in one window after which a client id, or a source address, is refused for the rest of it. */
export interface LoginThrottle {
  perClient: number;
  perSource: number;
}

export class Authenticator {
  /** Secret checks running now, per client id: they count against the throttle before their outcome is known. */
  private readonly checking = new Map<string, number>();

  constructor(
    private readonly clients: ClientRegistry,
    private readonly tokens: TokenService,
    private readonly directory: PersonDirectory,
    private readonly refusals: RefusalLog,
    private readonly throttle: LoginThrottle,
  ) {}

  /**
   * Whether a client id or a source is refused for now: too many failed logins in this window (counted in the
   * database, shared by instances), counting the checks of this client running here, which may still fail.
   * `position` is this check's place among them, taken on arrival, so concurrent attempts cannot all pass.
   */
  private async throttled(clientId: string, source: string, position: number): Promise<string | undefined> {
    const [byClient, bySource] = await Promise.all([this.refusals.current('TOKEN_REFUSED', `client:${clientId}`), this.refusals.current('TOKEN_REFUSED', `source:${source}`)]);
    if (byClient + position > this.throttle.perClient) return `client ${clientId}`;
    if (bySource >= this.throttle.perSource) return `source ${source}`;
    return undefined;
  }

  private endCheck(clientId: string): void {
    const running = (this.checking.get(clientId) ?? 1) - 1;
    if (running <= 0) this.checking.delete(clientId);
    else this.checking.set(clientId, running);
  }

  /** POST /oauth/token (RFC 6749 section 4.4), form-encoded; client credentials in Basic auth or the form. */
  async tokenRequest(form: URLSearchParams, authorization: string | undefined, source = 'unknown'): Promise<TokenResponse> {
    let clientId = form.get('client_id') ?? undefined;
    let clientSecret = form.get('client_secret') ?? undefined;
    if (authorization?.startsWith('Basic ')) {
      const decoded = Buffer.from(authorization.slice(6), 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon > 0) {
        clientId = decodeURIComponent(decoded.slice(0, colon));
        clientSecret = decodeURIComponent(decoded.slice(colon + 1));
      }
    }
    if (form.get('grant_type') !== 'client_credentials') return oauthError(400, 'unsupported_grant_type', 'Only grant_type=client_credentials is supported');
    if (!clientId || !clientSecret) return oauthError(401, 'invalid_client', 'Client id and secret are required (Basic auth or client_id/client_secret)');
    const id = clientId.slice(0, 64);
    const position = (this.checking.get(id) ?? 0) + 1;
    this.checking.set(id, position);
    let client;
    try {
      const refusedFor = await this.throttled(id, source, position);
      if (refusedFor) {
        return {
          status: 429,
          body: { error: 'temporarily_unavailable', error_description: `Too many failed logins for ${refusedFor}; try again after a few minutes` },
          headers: { 'retry-after': String(Math.ceil(REFUSAL_WINDOW_MS / 1000)) },
        };
      }
      client = await this.clients.authenticate(id, clientSecret);
    } catch (error) {
      if (!(error instanceof HubError && error.code === 'UNAUTHENTICATED')) throw error;
      await this.refusals.record('TOKEN_REFUSED', [`client:${id}`, `source:${source}`], 'unknown client, wrong secret or revoked client', { source });
      return oauthError(401, 'invalid_client', 'Unknown client, wrong secret or revoked client');
    } finally {
      this.endCheck(id);
    }
    const granted = parseScopes(client.scopes.join(' '));
    let scopes = granted;
    const requested = form.get('scope');
    if (requested) {
      try {
        scopes = narrowScopes(granted, parseScopes(requested));
      } catch (error) {
        return oauthError(400, 'invalid_scope', error instanceof HubError ? error.message : 'Invalid scope');
      }
      if (scopes.length === 0) return oauthError(400, 'invalid_scope', 'None of the requested scopes is granted to this client');
    }
    let person: string | undefined;
    if (client.kind === 'resident-app') {
      const identifier = form.get('patient_identifier');
      if (!identifier) return oauthError(400, 'invalid_request', 'A resident-app token is for one resident: give patient_identifier (national ID or system|value)');
      try {
        person = await this.directory.resolve({ identifier });
      } catch (error) {
        return oauthError(400, 'invalid_request', error instanceof HubError ? error.message : 'The resident cannot be found');
      }
    } else if (form.has('patient_identifier')) {
      return oauthError(400, 'invalid_request', 'patient_identifier is only for resident-app clients');
    }
    const issued = await this.tokens.issue(client, scopes, person);
    return { status: 200, body: { access_token: issued.token, token_type: 'Bearer', expires_in: issued.expiresIn, scope: issued.scope }, headers: { 'cache-control': 'no-store' } };
  }

  /**
   * The caller of an `Authorization: Bearer` header; UNAUTHENTICATED without a valid one. `alongside` is called
   * with the client id of a correctly signed token, before the registry confirms the client.
   */
  async caller(authorization: string | undefined, alongside?: (clientId: string) => void): Promise<Caller> {
    if (!authorization) throw new HubError('UNAUTHENTICATED', 'An access token is required: Authorization: Bearer <token> (get one at POST /oauth/token)');
    const match = /^Bearer ([A-Za-z0-9._~+/=-]+)$/.exec(authorization.trim());
    if (!match) throw new HubError('UNAUTHENTICATED', 'The Authorization header must be Bearer <token>');
    return this.tokens.verify(match[1]!, alongside);
  }

  /** The caller of a printable form's link (`?link=` of /referrals/<id>/form), for that referral's form only. */
  async formLinkCaller(link: string, referralId: string): Promise<Caller> {
    if (!/^[A-Za-z0-9._~+/=-]+$/.test(link)) throw new HubError('UNAUTHENTICATED', 'This link to the form is malformed');
    return this.tokens.verifyFormLink(link, referralId);
  }

  /** A link that opens a referral's printable form for a while, as this caller. */
  formLink(caller: Caller, referralId: string): Promise<{ token: string; expiresAt: Date }> {
    return this.tokens.issueFormLink(caller, referralId);
  }

  /** The access policy of a caller (a resident's is bound to the records of its person). */
  async policy(caller: Caller): Promise<AccessPolicy> {
    if (!caller.person) return AccessPolicy.forClient(caller);
    const records = await this.directory.members(caller.person);
    return AccessPolicy.forResident(caller, records.map((record) => record.id!));
  }
}
