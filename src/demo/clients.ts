/**
 * Demo API clients with documented secrets (README): one HIS client per demo member, an administrator and the
 * county health app. The hub refuses to start with any of them active when NODE_ENV=production.
 */
import type { ClientRegistry, clientRegistrationSchema } from '../auth/clients.ts';
import type { z } from 'zod';

const members = ['jiangnan-provincial', 'donghu-county', 'xishan-county', 'taolin-township', 'changtang-township', 'baiyangtian-township', 'chengnan-community'];

export const demoClients: z.input<typeof clientRegistrationSchema>[] = [
  ...members.map((member) => ({
    id: `his-${member}`,
    name: `HIS of org-${member}`,
    kind: 'member' as const,
    organization: `org-${member}`,
    scopes: 'system/*.cruds',
    secret: `demo-secret-his-${member}`,
  })),
  { id: 'consortium-admin', name: '医联体管理员 (demo)', kind: 'admin', scopes: 'system/*.cruds', secret: 'demo-secret-consortium-admin' },
  { id: 'county-health-app', name: '健康东湖 county health app (demo)', kind: 'resident-app', scopes: 'patient/*.rs', secret: 'demo-secret-county-health-app' },
];

/** Registers the demo clients that are not registered yet (a second run changes nothing). */
export async function seedDemoClients(registry: ClientRegistry): Promise<number> {
  const existing = new Set((await registry.list()).map((client) => client._id));
  let added = 0;
  for (const client of demoClients) {
    if (existing.has(client.id)) continue;
    await registry.register(client);
    added++;
  }
  return added;
}

/** The ids of demo clients that still accept their documented secret. */
export async function activeDemoClients(registry: ClientRegistry): Promise<string[]> {
  const active: string[] = [];
  for (const client of demoClients) {
    const accepted = await registry.authenticate(client.id, client.secret!).then(() => true, () => false);
    if (accepted) active.push(client.id);
  }
  return active;
}
