/**
 * The query a domain (and the access policy) asks the store, in its own terms: conditions on search
 * parameters and derived keys by name (`{ key: 'refbox', in: keys }`, `{ key: '_awaitsUntil', lt: now }`),
 * an order with an explicit keyset position ("after this value and id"), a limit and the stored values to
 * hand back. This module alone turns it into the stored fields of the layout (`t_refbox`, `sp._awaitsUntil`)
 * and a filter, a sort, and the position an ordered read starts from; no domain writes a stored field.
 *
 * Keys: `id` and `_lastUpdated`; a derived key of the type (hooks.ts), an anchor (`person`, `refbox`) or any
 * other (`_when`, `_rtype`); or a search parameter of the type by its code (`patient`, `identifier`, `focus`).
 * A query starting from an equality (`eq` or `in`) on an anchor, an indexed parameter or the id is what every
 * server answers from an index (FerretDB pushes down nothing else).
 */
import type { Filter } from 'mongodb';
import { badInput } from '../errors.ts';
import type { StoreHooks } from './hooks.ts';
import { findSearchParameter, storedField } from './search-parameters.ts';
import { allOf, type ResourceDocument } from './search-query.ts';

export type Scalar = string | number | boolean | Date;

export type Condition =
  | { key: string; eq: Scalar }
  | { key: string; in: readonly Scalar[] }
  | { key: string; lt?: Scalar; lte?: Scalar; gt?: Scalar; gte?: Scalar }
  | { key: string; exists: boolean }
  /** not before the value: at or after it, or without a value (an overdue filter's `false`) */
  | { key: string; notBefore: Scalar }
  /** any of these groups of conditions (each group: all of its conditions) */
  | { anyOf: Condition[][] };

/** An order by one key, then by id ascending; `after` resumes after a page's last resource (value and id). */
export interface Order {
  key: string;
  descending?: boolean;
  after?: { value: unknown; id: string };
}

export interface IndexedQuery {
  where: Condition[];
  order?: Order;
  limit?: number;
  /** Stored values handed back with each resource, by key (`person`, `_when`, `patient`). */
  values?: string[];
}

/**
 * Where an ordered read in ascending order may start (storage/sort-order.ts): after this order value and id, or
 * without an id at the first document holding the value. Stated with the keyset's filter, never guessed from it.
 */
export interface StartAfter {
  path: string;
  value: unknown;
  id?: string;
}

export interface CompiledQuery {
  filter: Filter<ResourceDocument>;
  sort?: Record<string, 1 | -1>;
  limit?: number;
  start?: StartAfter;
  /** stored field paths of the values asked for, by key */
  values: Record<string, string[]>;
}

/** The stored path of a key of a type (see the top of this file). */
export function fieldOf(type: string, key: string, hooks: StoreHooks): string {
  if (key === 'id') return '_id';
  if (key === '_lastUpdated') return 'ts';
  if (hooks.isAnchor(type, key)) return `t_${key}`;
  if (key.startsWith('_')) return `sp.${key}`;
  const parameter = findSearchParameter(type, key);
  if (!parameter) throw badInput(`${key} is neither a search parameter nor a derived key of ${type}`, [key]);
  return parameter.type === 'date' ? `sp.${parameter.key}.lo` : storedField(parameter);
}

function compileCondition(type: string, condition: Condition, hooks: StoreHooks): Filter<ResourceDocument> {
  if ('anyOf' in condition) return { $or: condition.anyOf.map((group) => allOf(group.map((item) => compileCondition(type, item, hooks)))) } as Filter<ResourceDocument>;
  const field = fieldOf(type, condition.key, hooks);
  if ('eq' in condition) return { [field]: condition.eq } as Filter<ResourceDocument>;
  if ('in' in condition) return { [field]: condition.in.length === 1 ? condition.in[0] : { $in: [...condition.in] } } as Filter<ResourceDocument>;
  if ('exists' in condition) return { [field]: { $exists: condition.exists } } as Filter<ResourceDocument>;
  if ('notBefore' in condition) return { [field]: { $not: { $lt: condition.notBefore } } } as Filter<ResourceDocument>;
  const range: Record<string, Scalar> = {};
  for (const operator of ['lt', 'lte', 'gt', 'gte'] as const) if (condition[operator] !== undefined) range[`$${operator}`] = condition[operator];
  if (Object.keys(range).length === 0) throw new Error(`A condition on ${condition.key} compares with nothing`);
  return { [field]: range } as Filter<ResourceDocument>;
}

/** Conditions as a filter over the stored fields (the access policy's row filter, a count). */
export function compileConditions(type: string, conditions: readonly Condition[], hooks: StoreHooks): Filter<ResourceDocument> {
  return allOf(conditions.map((condition) => compileCondition(type, condition, hooks)));
}

/** A domain's query as the store runs it. */
export function compileIndexedQuery(type: string, query: IndexedQuery, hooks: StoreHooks): CompiledQuery {
  const conditions = query.where.map((condition) => compileCondition(type, condition, hooks));
  let sort: Record<string, 1 | -1> | undefined;
  let start: StartAfter | undefined;
  if (query.order) {
    const path = fieldOf(type, query.order.key, hooks);
    const direction = query.order.descending ? -1 : 1;
    sort = { [path]: direction, _id: 1 };
    const after = query.order.after;
    if (after) {
      const position = keyset(sort, [after.value, after.id]);
      conditions.push(position.filter);
      start = position.start;
    }
  }
  const values = Object.fromEntries((query.values ?? []).map((key) => [key, storedPaths(type, key, hooks)]));
  return { filter: allOf(conditions), ...(sort ? { sort } : {}), ...(query.limit !== undefined ? { limit: query.limit } : {}), ...(start ? { start } : {}), values };
}

/** Where a value of a key may be stored: a derived key beside the search values or at the top, a parameter's field. */
function storedPaths(type: string, key: string, hooks: StoreHooks): string[] {
  if (key === 'id' || key === '_lastUpdated') return [fieldOf(type, key, hooks)];
  if (hooks.isAnchor(type, key)) return [`t_${key}`];
  const parameter = key.startsWith('_') ? undefined : findSearchParameter(type, key);
  return parameter ? [storedField(parameter)] : [`sp.${key}`];
}

/**
 * Resources strictly after `key` (the sort values, the id last) in `sort` order; missing values sort first, as
 * in MongoDB. The one place a keyset position becomes a filter (connections and domains' pages alike).
 */
export function keysetAfter(sort: Record<string, 1 | -1>, key: readonly unknown[]): Filter<ResourceDocument> {
  const fields = Object.keys(sort);
  const branches: Filter<ResourceDocument>[] = [];
  for (let i = 0; i < fields.length; i++) {
    const equalBefore = Object.fromEntries(fields.slice(0, i).map((field, j) => [field, key[j] ?? null]));
    const field = fields[i]!;
    const value = key[i] ?? null;
    let beyond: Filter<ResourceDocument> | undefined;
    if (sort[field] === 1) beyond = value === null ? { [field]: { $ne: null } } : { [field]: { $gt: value } };
    else beyond = value === null ? undefined : { $or: [{ [field]: { $lt: value } }, { [field]: null }] };
    if (beyond) branches.push({ ...equalBefore, ...beyond } as Filter<ResourceDocument>);
  }
  return branches.length === 1 ? branches[0]! : ({ $or: branches } as Filter<ResourceDocument>);
}

/**
 * The keyset filter of a position in `sort` order and where an ascending ordered read may start: after the
 * value and id when the order is the value and then the id, else at the value (a later key decides within it).
 */
export function keyset(sort: Record<string, 1 | -1>, key: readonly unknown[]): { filter: Filter<ResourceDocument>; start?: StartAfter } {
  const fields = Object.keys(sort);
  const [path] = fields;
  const value = key[0];
  const filter = keysetAfter(sort, key);
  if (!path || path === '_id' || sort[path] !== 1 || value === null || value === undefined) return { filter };
  const id = fields.length === 2 && fields[1] === '_id' && typeof key[1] === 'string' ? key[1] : undefined;
  return { filter, start: { path, value, ...(id !== undefined ? { id } : {}) } };
}

/** The stored values named by key from a structured document (see CompiledQuery.values). */
export function valuesOf(document: Record<string, unknown>, paths: Record<string, string[]>): Record<string, unknown> {
  const found: Record<string, unknown> = {};
  for (const [key, candidates] of Object.entries(paths)) {
    for (const path of candidates) {
      const value = path.split('.').reduce<unknown>((node, part) => (node && typeof node === 'object' ? (node as Record<string, unknown>)[part] : undefined), document);
      if (value !== undefined) {
        found[key] = value;
        break;
      }
    }
  }
  return found;
}
