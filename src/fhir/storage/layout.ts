/**
 * How a current resource version is laid out in its collection, by server.
 *
 * - `structured` (MongoDB): `{_id, v, ts, json, owner, sp: {...}, t_<key>: [...]}`. Equality values are
 *   top-level `t_` fields, ranges and patterns under `sp`; MongoDB evaluates every filter and sort itself,
 *   with indexes on the fields queries start from.
 * - `compact` (FerretDB v1): `{_id, v, ts, t: [...], o_<key>: <number>..., x: <BSON>}`. FerretDB decodes every document it reads
 *   field by field in Go, at tens of microseconds per string and per array element (measured on the Synthea
 *   Observations: 880 µs per structured document, 250 µs compact), and it pushes down nothing but top-level
 *   equalities anyway. So a compact document keeps at the top level only what FerretDB needs: `_id`, the
 *   version (compare-and-set), `ts`, and `t`, the distinct values a query can start from (the anchors: values
 *   of the indexed token and reference parameters, and derived keys such as the person); everything else
 *   (the FHIR JSON, the owner, all search values) is one BSON blob `x`. A query asks FerretDB for the documents
 *   holding one anchor value (`{t: "Patient/123"}`: a GIN index answers it), and the hub checks the whole
 *   filter on them (sift: MongoDB's query language in JavaScript), sorts and pages. The order keys `o_<key>`
 *   (milliseconds) copy the dates that searches and histories sort by (`sp.date.lo` as `o_date`, `sp._when` as
 *   `o__when`), so that where the hub reads PostgreSQL directly it can ask for the newest documents of an
 *   anchor a batch at a time and stop once a page is full (database/ferretdb-storage.ts).
 *
 * Both layouts are read through `viewOf`, which gives the structured shape, so filters, sorts and the access
 * policy are written once, in MongoDB's query language over the structured fields.
 */
import { BSON, Binary, type Document, type Filter } from 'mongodb';
import * as siftModule from 'sift';
import type { ResourceDocument } from '../search-query.ts';

export type LayoutName = 'structured' | 'compact';

/** A current version and its stored search fields, before it is laid out. */
export interface VersionFields {
  _id: string;
  v: number;
  ts: Date;
  json: string;
  owner?: string;
  sp: Record<string, unknown>;
  /** equality values: `t_<key>` -> values */
  top: Record<string, unknown>;
  /** the transaction it was written in, while that is not committed (storage/transactions.ts) */
  p?: string;
}

interface Packed {
  json: string;
  owner?: string;
  /** the search values, BSON within the BSON, so that a read decodes them only when a filter or sort asks */
  s?: Binary;
  /** the search values as a plain document (written before `s`; still read) */
  sp?: Record<string, unknown>;
  top: Record<string, unknown>;
}

/** The anchors of a version: the distinct values of its anchor fields (`t_<key>` listed in `anchorFields`). */
export function anchorsOf(top: Record<string, unknown>, anchorFields: ReadonlySet<string>): string[] {
  const anchors = new Set<string>();
  for (const [field, value] of Object.entries(top)) {
    if (!anchorFields.has(field)) continue;
    for (const item of Array.isArray(value) ? value : [value]) if (typeof item === 'string') anchors.add(item);
  }
  return [...anchors];
}

/** The top-level order key of a sort path: `sp.date.lo` -> `o_date`, `sp._when` -> `o__when`. */
export function orderKey(path: string): string {
  return `o_${path.replace(/^sp\./, '').replace(/\.lo$/, '').replace(/\./g, '_')}`;
}

/** The value at a dotted path of a structured view (`sp.date.lo`). */
export function valueAtPath(view: Record<string, unknown>, path: string): unknown {
  return path.split('.').reduce<unknown>((node, part) => (node && typeof node === 'object' ? (node as Record<string, unknown>)[part] : undefined), view);
}

/** The stored document of a version in a layout; `orderPaths`: the date paths that get order keys (compact). */
export function encodeCurrent(layout: LayoutName, fields: VersionFields, anchorFields: ReadonlySet<string>, orderPaths: readonly string[] = []): Document {
  const { _id, v, ts, json, owner, sp, top, p } = fields;
  if (layout === 'structured') return { _id, v, ts, json, sp, ...top, ...(owner ? { owner } : {}), ...(p ? { p } : {}) };
  const packed: Packed = { json, s: new Binary(BSON.serialize(sp)), top, ...(owner ? { owner } : {}) };
  const orders: Record<string, number> = {};
  for (const path of orderPaths) {
    const value = valueAtPath({ sp, ...top, ts }, path);
    if (value instanceof Date) orders[orderKey(path)] = value.getTime();
  }
  // The pending mark stays top-level, outside the blob: an equality finds a transaction's documents, and a read
  // sees it without decoding anything.
  return { _id, v, ts, t: anchorsOf(top, anchorFields), ...orders, ...(p ? { p } : {}), x: new Binary(BSON.serialize(packed)) };
}

/** The structured view of a stored document of either layout (the shape filters and sorts are written for). */
export function viewOf(document: Document): ResourceDocument {
  const blob = document.x as Binary | Uint8Array | undefined;
  if (!blob) return document as ResourceDocument;
  // The search values are decoded only when a filter or sort asks for them: most reads need only the JSON, and
  // decoding every value of every document read cost a page of 1,000 resources a third of its time.
  const packed = BSON.deserialize(blob instanceof Binary ? blob.buffer : blob) as Packed;
  const view = { _id: document._id, v: document.v, ts: document.ts, json: packed.json, ...packed.top, ...(packed.owner ? { owner: packed.owner } : {}), ...(document.p ? { p: document.p } : {}) } as ResourceDocument;
  const raw = packed.s;
  let sp = packed.sp as ResourceDocument['sp'] | undefined;
  Object.defineProperty(view, 'sp', {
    enumerable: true,
    configurable: true,
    get: () => (sp ??= (raw ? BSON.deserialize(raw.buffer) : {}) as ResourceDocument['sp']),
    set: (value: ResourceDocument['sp']) => {
      sp = value;
    },
  });
  return view;
}

/**
 * What to ask FerretDB for a filter over the compact layout: one query per anchor value of the filter (an
 * `_id` equality or `$in`, or an equality or `$in` on an anchor field, the fewest values winning), or a whole
 * collection read when the filter has none. The caller checks the filter itself on what comes back.
 */
export function compactQueries(filter: Filter<ResourceDocument>, anchorFields: ReadonlySet<string>): Document[] {
  let best: { field: '_id' | 't'; values: unknown[] } | undefined;
  for (const [key, value] of Object.entries(filter)) {
    const field = key === '_id' ? '_id' : anchorFields.has(key) ? 't' : undefined;
    if (!field) continue;
    let values: unknown[] | undefined;
    if (typeof value === 'string') values = [value];
    else if (value && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length === 1 && Array.isArray((value as { $in?: unknown }).$in)) {
      values = (value as { $in: unknown[] }).$in;
      if (values.some((item) => typeof item !== 'string')) values = undefined; // a RegExp is not an anchor
    }
    if (values && (!best || values.length < best.values.length || (values.length === best.values.length && field === '_id'))) best = { field, values };
  }
  if (!best) return [{}];
  return [...new Set(best.values)].map((value) => ({ [best.field]: value }));
}

type Tester = (query: unknown) => (item: unknown) => boolean;
// sift is CommonJS: loaded natively its default export is a property of the module object.
const sift: Tester = (typeof siftModule.default === 'function' ? siftModule.default : (siftModule.default as unknown as { default: Tester }).default) as Tester;

/** A predicate for a filter over structured views (MongoDB's semantics, evaluated here). */
export function matcher(filter: Filter<ResourceDocument>): (view: ResourceDocument) => boolean {
  return sift(filter) as (view: ResourceDocument) => boolean;
}
