/**
 * The FHIR resource store: the one path through which resources are written and read.
 *
 * Storage: one collection per resource type holding the current version of each resource, and one
 * `<Type>_history` collection holding every version ever written (including the current one and deletions).
 *
 * Writes without multi-document transactions: a write first inserts the new version into history under the
 * unique key `<id>/<version>`; that insert is the claim on the version number, so of two concurrent updates
 * of one version exactly one wins and the other gets CONFLICT. Then the current document is replaced with a
 * compare-and-set on the previous version. If a process dies between the two steps, the next writer finds the
 * claimed version in history and rolls the current document forward to it, so no written version is lost.
 */
import { randomUUID } from 'node:crypto';
import type { Collection, Db, Filter } from 'mongodb';
import type { Resource } from '@medplum/fhirtypes';
import { createMissingIndexes, type IndexSpec } from '../database/indexes.ts';
import { databaseProfile } from '../database/profile.ts';
import { HubError, badInput, conflict, notFound, translateDatabaseError } from '../errors.ts';
import { isServedResourceType, servedResourceTypes, indexedSearchParameters } from './resource-types.ts';
import { storedSearchValues } from '../identity/derived-values.ts';
import { DEFAULT_NATIONAL_ID_SYSTEM, nationalIdOf } from '../identity/patient-identity.ts';
import { findSearchParameter, searchParametersOf, parameterKey, searchIndexFingerprint } from './search-parameters.ts';
import { compileSearch, type ResourceDocument, type SearchArguments } from './search-query.ts';
import { registerTokenNormalizer } from './search-index.ts';
import { validateFhirResource } from './validation.ts';

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
}

export interface StoreOptions {
  /** Lists without `_count` refuse when more than this many resources match. */
  listMaxResults: number;
  /** Identifier system of the national ID, validated on every Patient written (default: the national OID). */
  nationalIdSystem?: string;
}

/**
 * What a caller may read and write (src/auth/access-policy.ts). A store with an access policy adds the
 * policy's filter to every query and checks every write, so no read path can forget it.
 */
export interface StoreAccess {
  /** An extra filter for reading a type, or undefined for none; throws FORBIDDEN when the type may not be read. */
  readFilter(type: string, permission: 'r' | 's'): Filter<ResourceDocument> | undefined;
  /** Throws FORBIDDEN unless the caller may write `resource` (replacing `existing`, for updates and deletes). */
  checkWrite(operation: 'c' | 'u' | 'd', resource: Resource, existing: Resource | undefined, unrestricted: FhirStore): Promise<void>;
  /** Told of every resource read or written for the caller (the audit trail). */
  observe?(resources: Resource[], action: 'R' | 'C' | 'U' | 'D'): void;
}

export interface SearchResult {
  resources: Resource[];
  /** Whether more resources match after this page. */
  hasMore: boolean;
}

export interface WriteOutcome {
  resource: Resource;
  outcome: 'created' | 'updated' | 'unchanged' | 'failed';
  /** Why a resource failed (putMany with atomic: false). */
  error?: HubError;
}

const ID_PATTERN = /^[A-Za-z0-9\-.]{1,64}$/;

/**
 * Up to how many ids a batch is read with one equality query per id on FerretDB. Measured on the Synthea data
 * (6,873 Observations, SQLite backend): 20 ids take 0.4 s as concurrent equalities and 2.9 s as one `$in`,
 * 100 ids 2.2 s against 3.5 s.
 */
const FERRETDB_EQUALITY_BATCH = 64;

/** The most documents one batched reverse-reference query may return. */
const REVERSE_REFERENCE_CAP = 50_000;

export function assertValidId(id: string): void {
  if (!ID_PATTERN.test(id)) throw badInput(`"${id.slice(0, 80)}" is not a valid FHIR id`, ['id']);
}

function assertServedType(type: string): void {
  if (!isServedResourceType(type)) throw badInput(`Resource type ${type} is not served by this hub`, ['resourceType']);
}

/** `W/"3"`, `"3"` or `3` -> 3. */
export function parseVersion(value: string | number): number {
  const match = /^(?:W\/)?"?(\d{1,9})"?$/.exec(String(value).trim());
  if (!match) throw badInput(`"${String(value).slice(0, 40)}" is not a resource version (use e.g. W/"3" or 3)`, ['ifMatch']);
  return Number(match[1]);
}

function parseResource(json: string): Resource {
  return JSON.parse(json) as Resource;
}

/** Compares two resources as FHIR content, ignoring the store's own meta.versionId and meta.lastUpdated. */
function sameContent(a: Resource, b: Resource): boolean {
  const strip = (resource: Resource): string => {
    const { meta, ...rest } = resource;
    const { versionId: _v, lastUpdated: _l, ...restMeta } = meta ?? {};
    return canonicalJson(Object.keys(restMeta).length > 0 ? { ...rest, meta: restMeta } : rest);
  };
  return strip(a) === strip(b);
}

function canonicalJson(value: unknown): string {
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

export class FhirStore {
  private readonly nationalIdSystem: string;

  constructor(
    private readonly db: Db,
    private readonly options: StoreOptions,
    private readonly access?: StoreAccess,
    private readonly signal?: AbortSignal,
  ) {
    this.nationalIdSystem = options.nationalIdSystem ?? DEFAULT_NATIONAL_ID_SYSTEM;
    // A national ID is compared with its check character in upper case (`…011x` finds `…011X`).
    registerTokenNormalizer(this.nationalIdSystem, (code) => code.trim().toUpperCase());
  }

  /**
   * The same store, reading and writing as a caller with this access policy. Once `signal` aborts (the
   * request ran out of time), every further operation fails with TIMEOUT instead of reaching the database.
   */
  withAccess(access: StoreAccess | undefined, signal?: AbortSignal): FhirStore {
    return new FhirStore(this.db, this.options, access, signal);
  }

  private scoped(type: string, filter: Filter<ResourceDocument>, permission: 'r' | 's'): Filter<ResourceDocument> {
    const extra = this.access?.readFilter(type, permission);
    return extra ? { $and: [filter, extra] } : filter;
  }

  /** With an access policy: NOT_FOUND unless the caller may read the resource's current version. */
  private async assertReadable(type: string, id: string): Promise<void> {
    if (!this.access) return;
    const visible = await this.current(type).findOne(this.scoped(type, { _id: id }, 'r'), { projection: { _id: 1 } });
    if (!visible) throw notFound(`${type}/${id} not found`);
  }

  private async checkWrite(operation: 'c' | 'u' | 'd', resource: Resource, existingJson?: string): Promise<void> {
    if (!this.access) return;
    await this.access.checkWrite(operation, resource, existingJson ? parseResource(existingJson) : undefined, this.withAccess(undefined));
    this.access.observe?.([resource], operation.toUpperCase() as 'C' | 'U' | 'D');
  }

  /** Passes what was read to the access policy's observer; returns it unchanged. */
  private seen<T extends Resource[]>(resources: T): T {
    this.access?.observe?.(resources, 'R');
    return resources;
  }

  /** FHIR validation plus the hub's rules for what it stores (a Patient's national ID must be valid). */
  private validate(resource: unknown): Resource {
    const valid = validateFhirResource(resource);
    if (valid.resourceType === 'Patient') nationalIdOf(valid, this.nationalIdSystem);
    return valid;
  }

  private searchValues(resource: Resource): Record<string, unknown> {
    return storedSearchValues(resource, this.nationalIdSystem);
  }

  /** The history entry and the current document of one version of a resource. */
  private versionDocuments(
    resource: Resource,
    version: number,
    ts: Date,
    op: HistoryDocument['op'],
  ): { history: HistoryDocument; current: ResourceDocument } {
    const id = resource.id as string;
    const json = JSON.stringify(resource);
    return {
      history: { _id: `${id}/${version}`, rid: id, v: version, ts, json, op },
      current: { _id: id, v: version, ts, json, sp: this.searchValues(resource) },
    };
  }

  private current(type: string): Collection<ResourceDocument> {
    assertServedType(type);
    return this.db.collection<ResourceDocument>(type);
  }

  private versions(type: string): Collection<HistoryDocument> {
    assertServedType(type);
    return this.db.collection<HistoryDocument>(`${type}_history`);
  }

  /**
   * Creates the indexes searches use; safe to call at every start. Only missing indexes are requested:
   * FerretDB v1.24 drops the connection when createIndexes names an index that already exists.
   */
  async ensureIndexes(): Promise<void> {
    for (const type of servedResourceTypes) {
      const available = searchParametersOf(type);
      const wanted: IndexSpec[] = [
        { key: { ts: 1 }, name: 'lastUpdated' },
        ...indexedSearchParameters
          .filter((code) => available.has(code))
          .map((code): IndexSpec => ({
            key: { [available.get(code)?.type === 'date' ? `sp.${parameterKey(code)}.lo` : `sp.${parameterKey(code)}`]: 1 as const },
            name: `sp_${parameterKey(code)}`,
          })),
      ];
      await createMissingIndexes(this.db.collection(type), wanted);
      await createMissingIndexes(this.db.collection(`${type}_history`), [{ key: { rid: 1, v: -1 }, name: 'resource_version' }]);
    }
  }

  /**
   * Whether the search values in the database were extracted with the parameters this hub knows. An empty
   * database is marked current. `stale` means searches on new parameters miss old resources until
   * `npm run reindex` has run.
   */
  async searchIndexStatus(): Promise<'current' | 'stale'> {
    return this.guard(async () => {
      const stored = await this.meta().findOne({ _id: 'search-index' });
      if (stored?.fingerprint === searchIndexFingerprint()) return 'current';
      for (const type of servedResourceTypes) {
        if ((await this.db.collection(type).estimatedDocumentCount()) > 0) return 'stale';
      }
      await this.markSearchIndexCurrent();
      return 'current';
    });
  }

  private meta(): Collection<{ _id: string; fingerprint: string; at: Date }> {
    return this.db.collection('hub_meta');
  }

  private async markSearchIndexCurrent(): Promise<void> {
    await this.meta().updateOne({ _id: 'search-index' }, { $set: { fingerprint: searchIndexFingerprint(), at: new Date() } }, { upsert: true });
  }

  /**
   * Re-extracts the search values of every current resource, a page at a time, and records the fingerprint.
   * Each update is a compare-and-set on the version, so a resource written meanwhile keeps its own values.
   */
  async reindex(onProgress?: (type: string, done: number) => void, pageSize = 50): Promise<{ documents: number; changed: number }> {
    return this.guard(async () => {
      let documents = 0;
      let changed = 0;
      for (const type of servedResourceTypes) {
        let after = '';
        let done = 0;
        for (;;) {
          const page = await this.current(type)
            .find({ _id: { $gt: after } }, { projection: { _id: 1, v: 1, json: 1, sp: 1 }, limit: pageSize })
            .sort({ _id: 1 })
            .toArray();
          if (page.length === 0) break;
          const updates = page.flatMap((document) => {
            const sp = this.searchValues(parseResource(document.json));
            if (canonicalJson(sp) === canonicalJson(document.sp)) return [];
            return [{ updateOne: { filter: { _id: document._id, v: document.v }, update: { $set: { sp } } } }];
          });
          if (updates.length > 0) changed += (await this.current(type).bulkWrite(updates, { ordered: false })).modifiedCount;
          documents += page.length;
          done += page.length;
          after = page[page.length - 1]!._id;
          onProgress?.(type, done);
        }
      }
      await this.markSearchIndexCurrent();
      return { documents, changed };
    });
  }

  private prepare(resource: Resource, id: string, version: number, lastUpdated: Date): Resource {
    const meta = { ...(resource.meta ?? {}), versionId: String(version), lastUpdated: lastUpdated.toISOString() };
    return { ...resource, id, meta } as Resource;
  }

  private async writeNewVersion(
    stored: Resource,
    version: number,
    ts: Date,
    op: HistoryDocument['op'],
  ): Promise<void> {
    const type = stored.resourceType;
    const id = stored.id as string;
    const { history, current: document } = this.versionDocuments(stored, version, ts, op);
    try {
      await this.versions(type).insertOne(history);
    } catch (error) {
      if (isDuplicateKey(error)) {
        await this.rollForward(type, id);
        throw conflict(`${type}/${id} was changed by someone else (version ${version} already exists); read it again and retry`);
      }
      throw error;
    }
    // Version 1, or a resource put again after its deletion: there is no current document to move forward.
    if (version === 1 || op === 'recreate') {
      try {
        await this.current(type).insertOne(document);
      } catch (error) {
        if (isDuplicateKey(error)) throw conflict(`${type}/${id} already exists`);
        throw error;
      }
    } else {
      await this.current(type).replaceOne({ _id: id, v: version - 1 }, document);
    }
  }

  /**
   * Repairs a write that was cut off between its two steps: if history holds a newer version than the
   * current document, the current document is moved forward to it.
   */
  private async rollForward(type: string, id: string): Promise<void> {
    const latest = await this.versions(type).find({ rid: id }).sort({ v: -1 }).limit(1).next();
    if (!latest) return;
    const current = await this.current(type).findOne({ _id: id }, { projection: { v: 1 } });
    if (current && current.v >= latest.v) return;
    if (latest.json === null) {
      await this.current(type).deleteOne({ _id: id, v: { $lt: latest.v } });
      return;
    }
    const resource = parseResource(latest.json);
    const document: ResourceDocument = { _id: id, v: latest.v, ts: latest.ts, json: latest.json, sp: this.searchValues(resource) };
    if (current) await this.current(type).replaceOne({ _id: id, v: current.v }, document);
    // No current document: a cut-off create or put-after-delete; a concurrent repair may win the insert.
    else await this.current(type).insertOne(document).catch((error: unknown) => {
      if (!isDuplicateKey(error)) throw error;
    });
  }

  /** Validates and creates a resource; the store assigns the id unless one is given (seed, PUT-as-create). */
  async create<T extends Resource>(resource: T, options: { id?: string } = {}): Promise<T> {
    return this.guard(async () => {
      const valid = this.validate(resource);
      const id = options.id ?? randomUUID();
      assertValidId(id);
      await this.checkWrite('c', { ...valid, id } as Resource);
      const ts = new Date();
      const stored = this.prepare(valid, id, 1, ts);
      await this.writeNewVersion(stored, 1, ts, 'create');
      return stored as T;
    });
  }

  /**
   * The current documents of some ids, as the caller may see them. Reads by plain `_id` equality, the one
   * shape every server answers with its primary key (FerretDB's SQLite backend pushes down nothing else); the
   * access policy's filter is then applied to the documents found, so it cannot turn the read into a scan.
   */
  private async documentsById(type: string, ids: string[], projection: Record<string, 1>): Promise<ResourceDocument[]> {
    const extra = this.access?.readFilter(type, 'r');
    const collection = this.current(type);
    let documents: ResourceDocument[];
    if (ids.length === 1) {
      const one = await collection.findOne({ _id: ids[0]! }, { projection });
      documents = one ? [one] : [];
    } else if (ids.length <= FERRETDB_EQUALITY_BATCH && (await databaseProfile(this.db)).ferretdb) {
      documents = (await mapWithConcurrency(ids, 16, (id) => collection.findOne({ _id: id }, { projection }))).filter((d): d is ResourceDocument => d !== null);
    } else {
      documents = await collection.find({ _id: { $in: ids } }, { projection, limit: ids.length, batchSize: ids.length + 1 }).toArray();
    }
    return extra ? documents.filter((document) => documentMatches(document, extra)) : documents;
  }

  async read<T extends Resource = Resource>(type: string, id: string): Promise<T> {
    return this.guard(async () => {
      assertValidId(id);
      const [document] = await this.documentsById(type, [id], { json: 1, sp: 1 } as Record<string, 1>);
      if (document) return this.seen([parseResource(document.json)])[0] as T;
      if (this.access?.readFilter(type, 'r')) throw notFound(`${type}/${id} not found`);
      const deleted = await this.versions(type).findOne({ rid: id, json: null });
      if (deleted) throw new HubError('GONE', `${type}/${id} was deleted`);
      throw notFound(`${type}/${id} not found`);
    });
  }

  /**
   * Reads many resources of one type; missing ones are absent from the map. On MongoDB one `$in` query; on
   * FerretDB, up to FERRETDB_EQUALITY_BATCH ids are read with one equality query each (sent together), as its
   * `$in` decodes the whole collection.
   */
  async readMany(type: string, ids: readonly string[]): Promise<Map<string, Resource>> {
    return this.guard(async () => {
      const valid = [...new Set(ids)].filter((id) => ID_PATTERN.test(id));
      const found = new Map<string, Resource>();
      if (valid.length === 0) return found;
      for (const document of await this.documentsById(type, valid, { json: 1, sp: 1 } as Record<string, 1>)) found.set(document._id, parseResource(document.json));
      this.seen([...found.values()]);
      return found;
    });
  }

  async readVersion<T extends Resource = Resource>(type: string, id: string, versionId: string | number): Promise<T> {
    return this.guard(async () => {
      assertValidId(id);
      const version = parseVersion(versionId);
      await this.assertReadable(type, id);
      const document = await this.versions(type).findOne({ _id: `${id}/${version}` });
      if (!document) throw notFound(`${type}/${id} has no version ${version}`);
      if (document.json === null) throw new HubError('GONE', `${type}/${id} version ${version} is a deletion`);
      return parseResource(document.json) as T;
    });
  }

  /** Every version of a resource, newest first; a deletion appears as `deleted: true`. */
  async history(type: string, id: string): Promise<{ versionId: string; lastUpdated: string; deleted: boolean; resource?: Resource }[]> {
    return this.guard(async () => {
      assertValidId(id);
      await this.assertReadable(type, id);
      const documents = await this.versions(type).find({ rid: id }).sort({ v: -1 }).toArray();
      if (documents.length === 0) throw notFound(`${type}/${id} not found`);
      return documents.map((document) => ({
        versionId: String(document.v),
        lastUpdated: document.ts.toISOString(),
        deleted: document.json === null,
        ...(document.json === null ? {} : { resource: parseResource(document.json) }),
      }));
    });
  }

  /**
   * Validates and updates a resource. `ifMatch` (or the resource's meta.versionId) names the version the
   * caller read; if the resource has moved on since, the update fails with CONFLICT and nothing is written.
   */
  async update<T extends Resource>(resource: T, options: { ifMatch?: string | number } = {}): Promise<T> {
    return this.guard(async () => {
      const valid = this.validate(resource);
      const id = valid.id;
      if (!id) throw badInput('An update needs the resource id', ['id']);
      assertValidId(id);
      const type = valid.resourceType;
      const current = await this.current(type).findOne({ _id: id }, { projection: { v: 1, ...(this.access ? { json: 1 } : {}) } });
      if (!current) {
        const claimed = await this.versions(type).findOne({ rid: id }, { projection: { v: 1 } });
        if (claimed) await this.rollForward(type, id);
        throw notFound(`${type}/${id} not found`);
      }
      const expectedRaw = options.ifMatch ?? valid.meta?.versionId;
      const expected = expectedRaw === undefined ? current.v : parseVersion(expectedRaw);
      if (expected !== current.v) {
        throw conflict(`${type}/${id} is at version ${current.v}, not ${expected}; read it again and retry`);
      }
      await this.checkWrite('u', valid, current.json);
      const ts = new Date();
      const stored = this.prepare(valid, id, expected + 1, ts);
      await this.writeNewVersion(stored, expected + 1, ts, 'update');
      return stored as T;
    });
  }

  /** Deletes a resource; its versions stay readable in history. Returns the version that records the deletion. */
  async delete(type: string, id: string, options: { ifMatch?: string | number } = {}): Promise<string> {
    return this.guard(async () => {
      assertValidId(id);
      const current = await this.current(type).findOne({ _id: id }, { projection: { v: 1, ...(this.access ? { json: 1 } : {}) } });
      if (!current) throw notFound(`${type}/${id} not found`);
      if (this.access) await this.checkWrite('d', parseResource(current.json), current.json);
      const expected = options.ifMatch === undefined ? current.v : parseVersion(options.ifMatch);
      if (expected !== current.v) throw conflict(`${type}/${id} is at version ${current.v}, not ${expected}`);
      const version = expected + 1;
      try {
        await this.versions(type).insertOne({ _id: `${id}/${version}`, rid: id, v: version, ts: new Date(), json: null, op: 'delete' });
      } catch (error) {
        if (isDuplicateKey(error)) throw conflict(`${type}/${id} was changed by someone else; read it again and retry`);
        throw error;
      }
      await this.current(type).deleteOne({ _id: id, v: expected });
      return String(version);
    });
  }

  /**
   * Creates or updates a resource with a given id, writing a new version only when its content differs
   * from what is stored (used by the seed: running it twice changes nothing).
   */
  async put(resource: Resource): Promise<WriteOutcome> {
    return this.guard(async () => {
      const valid = this.validate(resource);
      if (!valid.id) throw badInput('A put needs the resource id', ['id']);
      assertValidId(valid.id);
      const existing = await this.current(valid.resourceType).findOne({ _id: valid.id });
      if (!existing) {
        const latest = await this.versions(valid.resourceType).find({ rid: valid.id }).sort({ v: -1 }).limit(1).next();
        if (!latest) return { resource: await this.create(valid, { id: valid.id }), outcome: 'created' };
        if (latest.json !== null) {
          // History is ahead of a missing current document: a cut-off write; repair it, then put again.
          await this.rollForward(valid.resourceType, valid.id);
          return this.put(valid);
        }
        // Put after a deletion creates the resource again as its next version (FHIR update-as-create).
        await this.checkWrite('c', valid);
        const ts = new Date();
        const stored = this.prepare(valid, valid.id, latest.v + 1, ts);
        await this.writeNewVersion(stored, latest.v + 1, ts, 'recreate');
        return { resource: stored, outcome: 'created' };
      }
      const stored = parseResource(existing.json);
      if (sameContent(stored, valid)) return { resource: stored, outcome: 'unchanged' };
      const { meta: _meta, ...withoutMeta } = valid;
      const updated = await this.update({ ...withoutMeta, meta: { ...valid.meta, versionId: String(existing.v) } } as Resource);
      return { resource: updated, outcome: 'updated' };
    });
  }

  /** `put` for many resources (see writeMany). */
  async putMany(resources: Resource[], options: { atomic?: boolean; labels?: string[] } = {}): Promise<WriteOutcome[]> {
    return this.writeMany(resources.map((resource) => ({ resource, mode: 'put' as const })), options);
  }

  /**
   * Writes many resources with ids with a few bulk operations per resource type.
   *
   * - `create` (create if absent, as a POST with a stable id): two bulk inserts, history then current, and
   *   no read at all; an id that exists already is `unchanged` (the unique keys say so), never overwritten.
   * - `put` (create or update): one read of what exists, bulk inserts for the new ones, `update` for those
   *   whose content changed, `unchanged` for the rest.
   *
   * Atomic (the default): every resource is validated before anything is written, and the first invalid one
   * refuses the whole call, named by its label. Not atomic: invalid resources get a `failed` outcome and the
   * others are written.
   */
  async writeMany(
    items: { resource: Resource; mode: 'create' | 'put' }[],
    options: { atomic?: boolean; labels?: string[] } = {},
  ): Promise<WriteOutcome[]> {
    return this.guard(async () => {
      const atomic = options.atomic ?? true;
      const outcomes = new Map<Resource, WriteOutcome>();
      const valid: { resource: Resource; mode: 'create' | 'put' }[] = [];
      items.forEach(({ resource, mode }, index) => {
        try {
          const checked = this.validate(resource);
          if (!checked.id) throw badInput(`A ${checked.resourceType} to write has no id`, ['id']);
          assertValidId(checked.id);
          valid.push({ resource: checked, mode });
        } catch (error) {
          const label = options.labels?.[index];
          const named =
            error instanceof HubError && label ? new HubError(error.code, `${label}: ${error.message}`, error.outcome) : error;
          if (atomic || !(named instanceof HubError)) throw named;
          outcomes.set(resource, { resource, outcome: 'failed', error: named });
        }
      });
      if (this.access) await this.checkWrites(valid);
      const groups = new Map<string, { create: Resource[]; put: Resource[] }>();
      for (const { resource, mode } of valid) {
        const group = groups.get(resource.resourceType) ?? { create: [], put: [] };
        group[mode].push(resource);
        groups.set(resource.resourceType, group);
      }
      for (const [type, group] of groups) {
        if (group.create.length > 0) await this.createIfAbsent(type, group.create, outcomes);
        if (group.put.length > 0) await this.putGroup(type, group.put, outcomes);
      }
      return items.map(({ resource }) => outcomes.get(resource)!);
    });
  }

  /** Every write of a batch is checked before any is made (one read of existing resources per type). */
  private async checkWrites(items: { resource: Resource; mode: 'create' | 'put' }[]): Promise<void> {
    const idsByType = new Map<string, string[]>();
    for (const { resource } of items) idsByType.set(resource.resourceType, [...(idsByType.get(resource.resourceType) ?? []), resource.id as string]);
    const existing = new Map<string, string>();
    for (const [type, ids] of idsByType) {
      for (const document of await this.current(type).find({ _id: { $in: ids } }, { projection: { json: 1 } }).toArray()) existing.set(`${type}/${document._id}`, document.json);
    }
    for (const { resource, mode } of items) {
      const json = existing.get(`${resource.resourceType}/${resource.id}`);
      // A create of an existing id writes nothing (unchanged), so only the content is checked.
      await this.checkWrite(json && mode === 'put' ? 'u' : 'c', resource, mode === 'put' ? json : undefined);
    }
  }

  private async createIfAbsent(type: string, resources: Resource[], outcomes: Map<Resource, WriteOutcome>): Promise<void> {
    const ts = new Date();
    const prepared = resources.map((resource) => this.prepare(resource, resource.id as string, 1, ts));
    const documents = prepared.map((resource) => this.versionDocuments(resource, 1, ts, 'create'));
    const historyFailed = await insertManyReportingDuplicates(this.versions(type), documents.map((d) => d.history));
    const currentFailed = await insertManyReportingDuplicates(this.current(type), documents.map((d) => d.current));
    for (const [i, resource] of resources.entries()) {
      if (!historyFailed.has(i)) outcomes.set(resource, { resource: prepared[i]!, outcome: 'created' });
      else if (currentFailed.has(i)) outcomes.set(resource, { resource, outcome: 'unchanged' });
      else {
        // History had version 1 but the current document was missing: an earlier write was cut off. The
        // current document must hold what history holds, so roll forward from history.
        await this.current(type).deleteOne({ _id: resource.id as string, v: 1 });
        await this.rollForward(type, resource.id as string);
        outcomes.set(resource, { resource, outcome: 'unchanged' });
      }
    }
  }

  private async putGroup(type: string, group: Resource[], outcomes: Map<Resource, WriteOutcome>): Promise<void> {
    const existing = new Map<string, ResourceDocument>();
    for await (const document of this.current(type).find({ _id: { $in: group.map((r) => r.id as string) } }, { limit: group.length, batchSize: group.length + 1 })) {
      existing.set(document._id, document);
    }
    const fresh: Resource[] = [];
    for (const resource of group) {
      const document = existing.get(resource.id as string);
      if (!document) fresh.push(resource);
      else {
        const stored = parseResource(document.json);
        outcomes.set(resource, sameContent(stored, resource) ? { resource: stored, outcome: 'unchanged' } : await this.put(resource));
      }
    }
    if (fresh.length === 0) return;
    // New ids are created in bulk; an id taken meanwhile (a concurrent writer, or a deleted resource whose
    // history remains) goes through `put`, which updates or re-creates it.
    const created = new Map<Resource, WriteOutcome>();
    await this.createIfAbsent(type, fresh, created);
    for (const resource of fresh) {
      const outcome = created.get(resource)!;
      outcomes.set(resource, outcome.outcome === 'created' ? outcome : await this.putWithRetry(resource));
    }
  }

  private async putWithRetry(resource: Resource): Promise<WriteOutcome> {
    try {
      return await this.put(resource);
    } catch (error) {
      // A concurrent writer or a cut-off earlier write: `put` rolled it forward; one more look settles it.
      if (error instanceof HubError && error.code === 'CONFLICT') return this.put(resource);
      throw error;
    }
  }

  /** compileSearch with `_count` capped at the list maximum. */
  private compile(type: string, args: SearchArguments): ReturnType<typeof compileSearch> {
    const compiled = compileSearch(type, args);
    if (compiled.count !== undefined && compiled.count > this.options.listMaxResults) {
      throw badInput(`_count may be at most ${this.options.listMaxResults}`, ['_count']);
    }
    return compiled;
  }

  /** Searches one type with FHIR search arguments; `_count` bounds the page, otherwise the list maximum applies. */
  async search(type: string, args: SearchArguments): Promise<SearchResult> {
    return this.guard(async () => {
      assertServedType(type);
      const compiled = this.compile(type, args);
      const pageSize = compiled.count ?? this.options.listMaxResults;
      // `_count: 0` asks for no resources: nothing to read.
      if (pageSize === 0) {
        this.access?.readFilter(type, 's');
        return { resources: [], hasMore: false };
      }
      const documents = await this.current(type)
        // One batch for the whole page: a round trip per request, not per 101 documents.
        .find(this.scoped(type, compiled.filter, 's'), { projection: { json: 1 }, batchSize: pageSize + 1 })
        .sort(compiled.sort)
        .skip(compiled.offset)
        .limit(pageSize + 1)
        .toArray();
      const hasMore = documents.length > pageSize;
      if (hasMore && compiled.count === undefined) {
        throw new HubError(
          'TOO_MANY_RESULTS',
          `More than ${this.options.listMaxResults} ${type} resources match; narrow the search or page with _count and _offset`,
        );
      }
      return { resources: this.seen(documents.slice(0, pageSize).map((document) => parseResource(document.json))), hasMore };
    });
  }

  /**
   * Reverse references for many targets in one query: the resources of `type` whose reference parameter
   * `parameter` points at any of `targets` (`Patient/1`, ...), also matching `args`, grouped by target.
   * `_count`/`_offset` apply per target; without `_count` a target with more than the list maximum is an error.
   */
  async searchReferencing(
    type: string,
    parameterName: string,
    targets: readonly string[],
    args: SearchArguments,
  ): Promise<Map<string, Resource[] | HubError>> {
    return this.guard(async () => {
      assertServedType(type);
      const parameter = findSearchParameter(type, parameterName);
      if (!parameter || parameter.type !== 'reference') {
        throw badInput(`"${parameterName}" is not a reference search parameter of ${type}`, ['_reference']);
      }
      const compiled = this.compile(type, args);
      const field = `sp.${parameter.key}`;
      const unique = [...new Set(targets)];
      const filter = this.scoped(type, { $and: [compiled.filter, { [field]: { $in: unique } }] }, 's');
      const perTarget = compiled.count ?? this.options.listMaxResults;
      const cap = Math.min((compiled.offset + perTarget + 1) * unique.length, REVERSE_REFERENCE_CAP);
      const documents = await this.current(type)
        .find(filter, { projection: { json: 1, [field]: 1 }, batchSize: cap })
        .sort(compiled.sort)
        .limit(cap)
        .toArray();
      const grouped = new Map<string, Resource[]>(unique.map((target) => [target, []]));
      for (const document of documents) {
        const references = (document.sp as Record<string, unknown> | undefined)?.[parameter.key];
        const resource = parseResource(document.json);
        for (const reference of Array.isArray(references) ? references : []) grouped.get(reference as string)?.push(resource);
      }
      this.seen([...new Set([...grouped.values()].flat())]);
      const results = new Map<string, Resource[] | HubError>();
      for (const [target, resources] of grouped) {
        const tooMany =
          (compiled.count === undefined && resources.length > this.options.listMaxResults) || documents.length >= REVERSE_REFERENCE_CAP;
        results.set(
          target,
          tooMany
            ? new HubError('TOO_MANY_RESULTS', `More than ${Math.min(this.options.listMaxResults, REVERSE_REFERENCE_CAP)} ${type} resources refer to ${target}; narrow the search or page with _count`)
            : resources.slice(compiled.offset, compiled.offset + perTarget),
        );
      }
      return results;
    });
  }

  /**
   * For many values of one token, reference or uri parameter (`identifier` = `system|value`, ...): the ids of
   * the resources holding each value, in one query. Used to answer many conditional creates at once.
   */
  async idsByParameterValues(type: string, parameterName: string, values: string[]): Promise<Map<string, string[]> | undefined> {
    return this.guard(async () => {
      const parameter = findSearchParameter(type, parameterName);
      if (!parameter || !['token', 'reference', 'uri'].includes(parameter.type)) return undefined;
      const field = `sp.${parameter.key}`;
      const wanted = new Set(values);
      const found = new Map<string, string[]>(values.map((value) => [value, []]));
      const documents = await this.current(type).find(this.scoped(type, { [field]: { $in: [...wanted] } }, 's'), { projection: { [field]: 1 } }).toArray();
      for (const document of documents) {
        const held = (document.sp as Record<string, unknown> | undefined)?.[parameter.key];
        for (const value of Array.isArray(held) ? held : []) if (wanted.has(value as string)) found.get(value as string)!.push(document._id);
      }
      return found;
    });
  }

  /** One page for keyset paging: resources matching `filter` in `sort` order, with the values of the sort fields. */
  async findPage(
    type: string,
    filter: Filter<ResourceDocument>,
    sort: Record<string, 1 | -1>,
    limit: number,
  ): Promise<{ resource: Resource; sortValues: unknown[] }[]> {
    return this.guard(async () => {
      const fields = Object.keys(sort);
      const projection = Object.fromEntries([['json', 1], ...fields.filter((f) => f !== '_id').map((f) => [f, 1])]);
      const documents = await this.current(type).find(this.scoped(type, filter, 's'), { projection, limit, batchSize: limit + 1 }).sort(sort).toArray();
      const page = documents.map((document) => ({
        resource: parseResource(document.json),
        sortValues: fields.map((field) => field.split('.').reduce<unknown>((value, part) => (value as Record<string, unknown> | undefined)?.[part], document) ?? null),
      }));
      this.seen(page.map((item) => item.resource));
      return page;
    });
  }

  /**
   * Resources matching a filter over stored values, with the stored values named in `values` (e.g.
   * `_person`, `_when`): for the identity and history queries, which filter on values of their own.
   */
  async findWithValues(
    type: string,
    filter: Filter<ResourceDocument>,
    options: { sort?: Record<string, 1 | -1>; limit?: number; values?: string[] } = {},
  ): Promise<{ resource: Resource; values: Record<string, unknown> }[]> {
    return this.guard(async () => {
      const projection = Object.fromEntries([['json', 1], ...(options.values ?? []).map((key) => [`sp.${key}`, 1])]);
      const cursor = this.current(type).find(this.scoped(type, filter, 's'), { projection, ...(options.limit ? { limit: options.limit, batchSize: options.limit + 1 } : {}) });
      if (options.sort) cursor.sort(options.sort);
      const found = (await cursor.toArray()).map((document) => ({ resource: parseResource(document.json), values: document.sp ?? {} }));
      this.seen(found.map((item) => item.resource));
      return found;
    });
  }

  /** One aggregation over the current documents of a type (only stages FerretDB v1 and MongoDB share). */
  async aggregate<T extends Record<string, unknown>>(type: string, pipeline: object[]): Promise<T[]> {
    return this.guard(() => {
      const extra = this.access?.readFilter(type, 's');
      return this.current(type).aggregate<T>(extra ? [{ $match: extra }, ...pipeline] : pipeline).toArray();
    });
  }

  async countMatching(type: string, filter: Filter<ResourceDocument>): Promise<number> {
    return this.guard(() => this.current(type).countDocuments(this.scoped(type, filter, 's')));
  }

  async count(type: string, args: SearchArguments = {}): Promise<number> {
    return this.guard(async () => {
      const { filter } = compileSearch(type, args);
      return this.current(type).countDocuments(this.scoped(type, filter as Filter<ResourceDocument>, 's'));
    });
  }

  private async guard<T>(work: () => Promise<T>): Promise<T> {
    if (this.signal?.aborted) throw new HubError('TIMEOUT', 'The request ran out of time');
    try {
      return await work();
    } catch (error) {
      throw translateDatabaseError(error);
    }
  }
}

/** Runs `work` on every item with at most `limit` running at once; results in the order of the items. */
async function mapWithConcurrency<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const index = next++;
        results[index] = await work(items[index]!);
      }
    }),
  );
  return results;
}

/**
 * Whether a document matches a filter of the shapes the access policy builds (equality, `$in`, `$and`, on
 * dotted paths; an array value matches when any element does). Anything else fails closed.
 */
function documentMatches(document: unknown, filter: Filter<ResourceDocument>): boolean {
  return Object.entries(filter).every(([key, condition]) => {
    if (key === '$and') return (condition as Filter<ResourceDocument>[]).every((part) => documentMatches(document, part));
    if (key.startsWith('$')) throw new Error(`documentMatches: unsupported operator ${key}`);
    const value = key.split('.').reduce<unknown>((node, part) => (node && typeof node === 'object' ? (node as Record<string, unknown>)[part] : undefined), document);
    const values = Array.isArray(value) ? value : [value];
    if (condition && typeof condition === 'object' && !Array.isArray(condition)) {
      const operators = Object.keys(condition);
      if (operators.length !== 1 || operators[0] !== '$in') throw new Error(`documentMatches: unsupported condition on ${key}`);
      const wanted = new Set((condition as { $in: unknown[] }).$in);
      return values.some((item) => wanted.has(item));
    }
    return values.some((item) => item === condition);
  });
}

/** Inserts with ordered: false; returns the indexes refused as duplicates. Any other failure is thrown. */
async function insertManyReportingDuplicates<T extends { _id: string }>(collection: Collection<T>, documents: T[]): Promise<Set<number>> {
  try {
    await collection.insertMany(documents as never, { ordered: false });
    return new Set();
  } catch (error) {
    const writeErrors = (error as { writeErrors?: { code?: number; index: number }[] | { code?: number; index: number } }).writeErrors;
    const list = Array.isArray(writeErrors) ? writeErrors : writeErrors ? [writeErrors] : [];
    if (list.length === 0 || list.some((writeError) => writeError.code !== 11000)) throw error;
    return new Set(list.map((writeError) => writeError.index));
  }
}

function isDuplicateKey(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 11000;
}
