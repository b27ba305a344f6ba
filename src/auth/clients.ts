/**
 * Registered API clients: each member organisation's HIS, administrators and the county health app.
 * A client's secret is stored only as a slow hash (scrypt, N=2^15); comparing is constant-time.
 */
import { randomBytes, scrypt as scryptCallback, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import type { Collection, Db } from 'mongodb';
import { z } from 'zod';
import { ferretDbStorageOf, type FieldType } from '../database/ferretdb-storage.ts';
import { createMissingIndexes } from '../database/indexes.ts';
import { HubError, badInput, notFound } from '../errors.ts';
import { formatScope, parseScopes } from './scopes.ts';
import { ID_PATTERN } from '../fhir/references.ts';

/** member: a hospital's HIS acting for its organisation; admin: consortium administrators; resident-app: obtains tokens for one resident. */
export const clientKinds = ['member', 'admin', 'resident-app'] as const;
export type ClientKind = (typeof clientKinds)[number];

export interface ClientDocument {
  _id: string;
  name: string;
  kind: ClientKind;
  /** `Organization/<id>` the client acts for (members) */
  organization?: string;
  scopes: string[];
  secretHash: string;
  /** Random per registration: a token names the registration it was issued under, so re-registering a client id invalidates older tokens. */
  registration: string;
  revoked: boolean;
  createdAt: Date;
  revokedAt?: Date;
}

export type ClientInfo = Omit<ClientDocument, 'secretHash'>;

/** The fields of a registration a request's token is checked against (the secret's hash is never read for it). */
const registrationFields: Record<keyof ClientInfo, FieldType> = {
  _id: 'string',
  name: 'string',
  kind: 'string',
  organization: 'string',
  scopes: 'array',
  registration: 'string',
  revoked: 'bool',
  createdAt: 'date',
  revokedAt: 'date',
};

export const clientRegistrationSchema = z
  .object({
    id: z.string().regex(/^[A-Za-z0-9._-]{3,64}$/, 'client id: 3 to 64 letters, digits, . _ -'),
    name: z.string().min(1).max(200),
    kind: z.enum(clientKinds),
    organization: z.string().regex(ID_PATTERN, 'an Organization id').optional(),
    scopes: z.string().min(1).max(4000),
    secret: z.string().min(24, 'a secret of at least 24 characters').max(200).optional(),
  })
  .strict()
  .refine((value) => value.kind !== 'member' || value.organization !== undefined, { message: 'a member client needs its organization' });

const SCRYPT: ScryptOptions = { N: 32768, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };

function scrypt(secret: string, salt: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => scryptCallback(secret, salt, 32, SCRYPT, (error, key) => (error ? reject(error) : resolve(key))));
}

export async function hashSecret(secret: string): Promise<string> {
  const salt = randomBytes(16);
  return `scrypt$${SCRYPT.N}$${salt.toString('base64url')}$${(await scrypt(secret, salt)).toString('base64url')}`;
}

async function secretMatches(secret: string, stored: string): Promise<boolean> {
  const [scheme, , salt, hash] = stored.split('$');
  if (scheme !== 'scrypt' || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64url');
  const actual = await scrypt(secret, Buffer.from(salt, 'base64url'));
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/** A hash to compare against when the client id is unknown, so unknown ids take as long as wrong secrets. */
let decoyHash: Promise<string> | undefined;

export class ClientRegistry {
  private readonly clients: Collection<ClientDocument>;

  constructor(private readonly db: Db) {
    this.clients = db.collection<ClientDocument>('clients');
  }

  /** Clients are read by id at every request. */
  async ensureIndexes(): Promise<void> {
    await createMissingIndexes(this.db, 'clients', []);
  }

  /** Registers (or re-registers, replacing secret and scopes) a client; returns its secret once. */
  async register(input: z.input<typeof clientRegistrationSchema>): Promise<{ client: ClientInfo; secret: string }> {
    const parsed = clientRegistrationSchema.safeParse(input);
    if (!parsed.success) throw badInput(parsed.error.issues.map((issue) => issue.message).join('; '));
    const { id, name, kind, organization, scopes, secret: given } = parsed.data;
    const normalized = parseScopes(scopes).map(formatScope);
    if (kind === 'resident-app' && normalized.some((scope) => !scope.startsWith('patient/'))) {
      throw badInput('a resident-app client gets patient/ scopes only', ['scopes']);
    }
    if (kind !== 'resident-app' && normalized.some((scope) => scope.startsWith('patient/'))) {
      throw badInput('patient/ scopes are for resident-app clients', ['scopes']);
    }
    const secret = given ?? randomBytes(24).toString('base64url');
    const document: ClientDocument = {
      _id: id,
      name,
      kind,
      ...(organization ? { organization: `Organization/${organization}` } : {}),
      scopes: normalized,
      secretHash: await hashSecret(secret),
      registration: randomBytes(12).toString('base64url'),
      revoked: false,
      createdAt: new Date(),
    };
    await this.clients.replaceOne({ _id: id }, document, { upsert: true });
    const { secretHash: _hash, ...client } = document;
    return { client, secret };
  }

  async list(): Promise<ClientInfo[]> {
    return (await this.clients.find({}, { projection: { secretHash: 0 } }).sort({ _id: 1 }).toArray()) as ClientInfo[];
  }

  async revoke(id: string): Promise<void> {
    const result = await this.clients.updateOne({ _id: id }, { $set: { revoked: true, revokedAt: new Date() } });
    if (result.matchedCount === 0) throw notFound(`No client ${id}`);
  }

  /** The client, if it exists and is not revoked (read at every request: a revoked client's tokens stop at once). */
  async active(id: string): Promise<ClientInfo | undefined> {
    // Read at every request (a revocation holds from the next one), so straight from PostgreSQL where it can be.
    const direct = await ferretDbStorageOf(this.db)?.readFields(this.db.databaseName, 'clients', id, registrationFields);
    const client = direct !== undefined ? (direct as ClientInfo | null) : await this.clients.findOne({ _id: id }, { projection: { secretHash: 0 } });
    return client && !client.revoked ? (client as ClientInfo) : undefined;
  }

  /** Checks a client id and secret; UNAUTHENTICATED for an unknown id, a wrong secret or a revoked client. */
  async authenticate(id: string, secret: string): Promise<ClientInfo> {
    const client = typeof id === 'string' && id.length <= 64 ? await this.clients.findOne({ _id: id }) : null;
    decoyHash ??= hashSecret(randomBytes(16).toString('hex'));
    const matches = await secretMatches(String(secret).slice(0, 200), client?.secretHash ?? (await decoyHash));
    if (!client || !matches || client.revoked) throw new HubError('UNAUTHENTICATED', 'Unknown client, wrong secret or revoked client');
    const { secretHash: _hash, ...info } = client;
    return info;
  }
}
