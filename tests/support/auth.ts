/** Test helpers for authenticated hubs: a hub with the demo data and demo clients, and tokens. */
import type { Hub } from '../../src/app.ts';
import { demoClients, seedDemoClients } from '../../src/demo/clients.ts';
import { ClientRegistry } from '../../src/auth/clients.ts';
import { demoHub, type TestDatabase } from './hub.ts';

export async function authenticatedDemoHub(label: string, overrides: Record<string, string> = {}): Promise<{ database: TestDatabase; hub: Hub; registry: ClientRegistry }> {
  const { database, hub } = await demoHub(label, { AUTH_REQUIRED: 'true', AUDIT_FLUSH_MS: '50', ...overrides });
  // Clients are read from the database at every token request, so registering them after the start is fine.
  const registry = new ClientRegistry(database.connection.db);
  await seedDemoClients(registry);
  return { database, hub, registry };
}

export const demoSecret = (clientId: string): string => demoClients.find((client) => client.id === clientId)!.secret!;

export async function tokenResponse(hubUrl: string, clientId: string, secret: string, extra: Record<string, string> = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${hubUrl}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'client_credentials', ...extra }).toString(),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

export async function token(hubUrl: string, clientId: string, extra: Record<string, string> = {}): Promise<string> {
  const { status, body } = await tokenResponse(hubUrl, clientId, demoSecret(clientId), extra);
  if (status !== 200) throw new Error(`token for ${clientId}: ${status} ${JSON.stringify(body)}`);
  return body.access_token as string;
}
