/**
 * What kind of server the hub talks to. FerretDB v1 answers some query shapes very differently from MongoDB
 * (its SQLite backend pushes down only `{_id: <string>}`; `$in` decodes the whole collection), so a few
 * batched reads choose their form by server. Detected once per database handle from `buildInfo`
 * (FerretDB adds `ferretdbVersion`).
 */
import type { Db } from 'mongodb';

export interface DatabaseProfile {
  ferretdb: boolean;
}

const profiles = new WeakMap<Db, Promise<DatabaseProfile>>();

export function databaseProfile(db: Db): Promise<DatabaseProfile> {
  let profile = profiles.get(db);
  if (!profile) {
    profile = db
      .admin()
      .command({ buildInfo: 1 })
      .then((info) => ({ ferretdb: typeof info.ferretdbVersion === 'string' }));
    // A failure (database down) is not remembered: the next call asks again.
    profile.catch(() => profiles.delete(db));
    profiles.set(db, profile);
  }
  return profile;
}
