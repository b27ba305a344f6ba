import DataLoader from 'dataloader';
import type { Resource } from '@medplum/fhirtypes';
import type { FhirStore } from '../fhir/store.ts';

/** Per-request state: the store and the loaders that batch reference resolution within one request. */
export interface RequestContext {
  store: FhirStore;
  /** Loads `Type/id` keys; all keys asked for in one tick become one query per resource type. */
  resources: DataLoader<string, Resource | null>;
  /** Whether the database answered a ping, for hubStatus. */
  databaseReachable: () => Promise<boolean>;
}

export function createResourceLoader(store: FhirStore): DataLoader<string, Resource | null> {
  return new DataLoader<string, Resource | null>(async (keys) => {
    const idsByType = new Map<string, string[]>();
    for (const key of keys) {
      const [type, id] = key.split('/') as [string, string];
      idsByType.set(type, [...(idsByType.get(type) ?? []), id]);
    }
    const found = new Map<string, Resource>();
    await Promise.all(
      [...idsByType].map(async ([type, ids]) => {
        for (const [id, resource] of await store.readMany(type, ids)) found.set(`${type}/${id}`, resource);
      }),
    );
    return keys.map((key) => found.get(key) ?? null);
  });
}

export function createRequestContext(store: FhirStore, databaseReachable: () => Promise<boolean>): RequestContext {
  return { store, resources: createResourceLoader(store), databaseReachable };
}
