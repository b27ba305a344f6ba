/**
 * The physical layout of the store: its collections and document types, the layout of current documents on
 * this server, and the stored search fields of a resource.
 *
 * - `<Type>`: the current version of each resource (layout.ts: structured on MongoDB, compact on FerretDB);
 * - `<Type>_history`: every version ever written (including the current one and deletions), `<id>/<version>`;
 * - `tombstones`: what remains of a deleted id (its last version and owner);
 * - `write_intents`: writes in progress (versions.ts), a transaction's commit point (transactions.ts);
 * - `hub_meta`: the search index's fingerprint (maintenance.ts).
 *
 * One `Storage` per database handle and process, shared by every request's store; it holds no request state.
 */
import type { Collection, Db } from 'mongodb';
import type { Resource } from '@medplum/fhirtypes';
import { databaseProfile } from '../../database/profile.ts';
import { badInput } from '../../errors.ts';
import type { StoreHooks } from '../hooks.ts';
import { indexedSearchParameters, isServedResourceType } from '../resource-types.ts';
import { TOP_LEVEL_PREFIX, findSearchParameter, searchParametersOf, storedField } from '../search-parameters.ts';
import { extractSearchValues } from '../search-index.ts';
import type { ResourceDocument } from '../search-query.ts';
import { ferretDbShortcuts, type FerretDbShortcuts } from './ferretdb.ts';
import { encodeCurrent, type LayoutName, type VersionFields } from './layout.ts';

export interface HistoryDocument {
  /** `<id>/<version>` */
  _id: string;
  rid: string;
  v: number;
  ts: Date;
  /** The version's FHIR JSON; null for a deletion. */
  json: string | null;
  /** recreate: put again after a deletion */
  op: 'create' | 'update' | 'delete' | 'recreate';
  /** the organisation the resource belongs to, decided when its id was first written */
  owner?: string;
  /** the transaction it was written in, while that is not committed (transactions.ts) */
  p?: string;
}

/** What remains of a deleted id: its last version and owner, so putting it again continues both. */
export interface Tombstone {
  /** `Type/id` */
  _id: string;
  /** the resource type (an equality the type's deletions are found by) */
  type?: string;
  v: number;
  owner?: string;
  ts: Date;
}

/**
 * A write in progress: the ids it is about to write. Removed when the write is complete; one left behind by a
 * process that died mid-write tells the next start which resources to roll forward (versions.ts).
 */
export interface WriteIntent {
  _id: string;
  /** the ids of one type */
  type: string;
  ids: string[];
  /** the ids of further types written under the same intent (a Bundle's batch: one intent for all its types) */
  more?: { type: string; ids: string[] }[];
  at: Date;
  /** a transaction's: pending until it commits (transactions.ts); single writes have none */
  state?: 'pending' | 'committed';
}

/** The history entry and the current fields of one version. */
export interface VersionDocuments {
  history: HistoryDocument;
  current: VersionFields;
}

export function assertServedType(type: string): void {
  if (!isServedResourceType(type)) throw badInput(`Resource type ${type} is not served by this hub`, ['resourceType']);
}

export function parseResource(json: string): Resource {
  return JSON.parse(json) as Resource;
}

export class Storage {
  constructor(
    readonly db: Db,
    readonly hooks: StoreHooks,
  ) {}

  current(type: string): Collection<ResourceDocument> {
    assertServedType(type);
    return this.db.collection<ResourceDocument>(type);
  }

  versions(type: string): Collection<HistoryDocument> {
    assertServedType(type);
    return this.db.collection<HistoryDocument>(`${type}_history`);
  }

  tombstones(): Collection<Tombstone> {
    return this.db.collection<Tombstone>('tombstones');
  }

  intents(): Collection<WriteIntent> {
    return this.db.collection<WriteIntent>('write_intents');
  }

  meta(): Collection<{ _id: string; fingerprint: string; at: Date }> {
    return this.db.collection('hub_meta');
  }

  /** The layout of current documents on this server (layout.ts): compact on FerretDB, unless the MongoDB forms are asked for. */
  async layout(): Promise<LayoutName> {
    return (await databaseProfile(this.db)).ferretdb ? 'compact' : 'structured';
  }

  /** The short cuts through FerretDB's PostgreSQL, where the hub has them (ferretdb.ts); undefined on MongoDB. */
  ferretdb(): FerretDbShortcuts | undefined {
    return ferretDbShortcuts(this.db);
  }

  /** The top-level fields a query of a type can start from: the indexed equality parameters and the domains' anchors. */
  anchorFields(type: string): Set<string> {
    const available = searchParametersOf(type);
    const fields = new Set<string>();
    for (const code of indexedSearchParameters) {
      const parameter = available.get(code);
      if (parameter && storedField(parameter).startsWith(TOP_LEVEL_PREFIX)) fields.add(storedField(parameter));
    }
    for (const field of this.hooks.anchorFields(type)) fields.add(field);
    return fields;
  }

  /** The date paths a type's queries sort by, which get order keys in the compact layout (`sp.date.lo`, `sp._when`). */
  orderPaths(type: string): string[] {
    const available = searchParametersOf(type);
    const paths = indexedSearchParameters.filter((code) => available.get(code)?.type === 'date').map((code) => `sp.${available.get(code)!.key}.lo`);
    paths.push(...this.hooks.orderPaths(type));
    // The last update (`_lastUpdated`): REST paging in that order, type history and members' syncs.
    paths.push('ts');
    return [...new Set(paths)];
  }

  /**
   * The stored search fields of a resource: the values of its search parameters and what the domains derive
   * from it, equality values as top-level `t_` fields, the rest under `sp` (see storedField).
   */
  searchFields(resource: Resource): { sp: Record<string, unknown>; top: Record<string, unknown> } {
    const values = extractSearchValues(resource);
    const sp: Record<string, unknown> = {};
    const top: Record<string, unknown> = {};
    const parameters = searchParametersOf(resource.resourceType);
    for (const [key, value] of Object.entries(values)) {
      const parameter = findSearchParameter(resource.resourceType, key) ?? parameters.get(key);
      const field = parameter ? storedField(parameter) : `sp.${key}`;
      if (field.startsWith('sp.')) sp[key] = value;
      else top[field] = value;
    }
    const derived = this.hooks.derived(resource, values);
    Object.assign(top, derived.top);
    Object.assign(sp, derived.sp);
    return { sp, top };
  }

  /**
   * The history entry and the current document of one version of a resource. `owner`: inherited from the id's
   * earlier versions or the writing member's organisation; else the organisation its content names (the
   * domains' `owner` hook).
   */
  versionDocuments(resource: Resource, version: number, ts: Date, op: HistoryDocument['op'], owner?: string): VersionDocuments {
    const id = resource.id as string;
    const json = JSON.stringify(resource);
    const { sp, top } = this.searchFields(resource);
    const decided = owner ?? this.hooks.owner(resource, { ...sp, ...top } as never);
    return {
      history: { _id: `${id}/${version}`, rid: id, v: version, ts, json, op, ...(decided ? { owner: decided } : {}) },
      current: { _id: id, v: version, ts, json, sp, top, ...(decided ? { owner: decided } : {}) },
    };
  }

  /** The stored document of a version, in this server's layout. */
  async encode(type: string, fields: VersionFields): Promise<ResourceDocument> {
    return encodeCurrent(await this.layout(), fields, this.anchorFields(type), this.orderPaths(type)) as ResourceDocument;
  }

  /** The current document of a stored version (from its JSON, with its search fields computed again). */
  async encodeVersion(type: string, version: { _id: string; v: number; ts: Date; json: string; owner?: string }): Promise<ResourceDocument> {
    const { sp, top } = this.searchFields(parseResource(version.json));
    return this.encode(type, { _id: version._id, v: version.v, ts: version.ts, json: version.json, sp, top, ...(version.owner ? { owner: version.owner } : {}) });
  }
}
