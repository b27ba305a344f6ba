/**
 * The terminology the recognition rules and the enrichment read — catalog, QC records, code maps — cached per
 * process by generation: every write batch asks the database for the generation number (one `_id` equality) and
 * reads the terminology again only when it moved. A written map, QC record or catalog moves it (the store
 * extension's afterWrite), so several hub instances see an edit as soon as it is written; nothing is shared in
 * memory but a cache that the database validates.
 */
import type { Db } from 'mongodb';
import type { FhirStore } from '../fhir/store.ts';
import type { Terminology } from './normalise.ts';
import { RecognitionService } from './recognition-service.ts';

interface Generation {
  _id: string;
  n: number;
}

const generations = (db: Db) => db.collection<Generation>('recognition_terminology');

async function generationOf(db: Db): Promise<number> {
  return (await generations(db).findOne({ _id: 'generation' }))?.n ?? 0;
}

/** Marks the terminology as changed: every process reads it again before its next write. */
export async function bumpTerminology(db: Db): Promise<void> {
  await generations(db).updateOne({ _id: 'generation' }, { $inc: { n: 1 } }, { upsert: true });
}

/** Loads the terminology in force, reading it again only when its generation moved. */
export class TerminologyCache {
  private cached: { generation: number; terminology: Promise<Terminology> } | undefined;

  async current(store: FhirStore, db: Db): Promise<Terminology> {
    const generation = await generationOf(db);
    if (this.cached?.generation !== generation) {
      const terminology = new RecognitionService(store, '').data();
      this.cached = { generation, terminology };
      // A failed read is not kept: the next write asks again.
      terminology.catch(() => {
        if (this.cached?.terminology === terminology) this.cached = undefined;
      });
    }
    return this.cached.terminology;
  }
}

