/**
 * Conditional create (`If-None-Exist`, a Bundle entry's `ifNoneExist`, GraphQL `TCreate(ifNoneExist:)`), exactly
 * once under any concurrency and across hub instances: when nothing matches the condition, the resource is
 * created under an id derived from its type and condition, so every writer that finds nothing at the same moment
 * claims the same id and exactly one wins (the store's unique `<id>/<version>` key); the others get the winner's
 * resource. No lock, no transaction: what MongoDB and FerretDB both guarantee.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Resource } from '@medplum/fhirtypes';
import { HubError } from '../errors.ts';
import type { FhirRepository } from './repository.ts';

/** `identifier=a|b&status=active` in a canonical order: the same condition however it is written. */
function canonicalCondition(condition: string): string {
  const pairs = condition
    .replace(/^[A-Za-z]+\?/, '')
    .split('&')
    .filter(Boolean)
    .map((pair) => {
      const [name = '', ...rest] = pair.split('=');
      return `${decodeURIComponent(name)}=${decodeURIComponent(rest.join('='))}`;
    });
  return pairs.sort().join('&');
}

/** A condition (`identifier=system|value&status=active`) as search arguments; BAD_USER_INPUT when it is not one. */
export function conditionArguments(condition: string, where: string): Record<string, string> {
  const args: Record<string, string> = {};
  for (const pair of condition.replace(/^[A-Za-z]+\?/, '').split('&')) {
    const [name, ...rest] = pair.split('=');
    const value = rest.join('=');
    if (!name || !value || !/^[A-Za-z_][A-Za-z0-9_-]*$/.test(name)) throw new HubError('BAD_USER_INPUT', `${where}: "${condition}" is not a search like identifier=system|value`);
    args[name] = decodeURIComponent(value);
  }
  return args;
}

/** The id a conditional create claims: derived from the type and the condition alone. */
export function conditionalCreateId(type: string, condition: string): string {
  return createHash('sha256').update(`${type}?${canonicalCondition(condition)}`).digest('hex').slice(0, 32);
}

/**
 * The resource matching `condition`, or a new one created exactly once. `matches` searches the condition (what
 * the door's search syntax makes of it); more than one match is the caller's to refuse.
 */
export async function createOnce(
  store: FhirRepository,
  resource: Resource,
  condition: string,
  matches: () => Promise<Resource[]>,
): Promise<{ resource: Resource; created: boolean }> {
  const found = await matches();
  if (found.length > 1) throw new HubError('CONFLICT', `The condition ${condition} matches more than one ${resource.resourceType}`);
  if (found.length === 1) return { resource: found[0]!, created: false };
  const { id: _ignored, meta: _meta, ...content } = resource;
  const id = conditionalCreateId(resource.resourceType, condition);
  try {
    return { resource: await store.create(content as Resource, { id }), created: true };
  } catch (error) {
    if (!(error instanceof HubError) || error.code !== 'CONFLICT') throw error;
  }
  // Another writer claimed the id first (the store has finished its write); it is the match, unless it has since
  // been changed so that it no longer matches, or deleted: then this resource is a new one of its own.
  const again = await matches();
  if (again.length === 1) return { resource: again[0]!, created: false };
  if (again.length > 1) throw new HubError('CONFLICT', `The condition ${condition} matches more than one ${resource.resourceType}`);
  return { resource: await store.create(content as Resource, { id: randomUUID() }), created: true };
}
