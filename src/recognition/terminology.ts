/**
 * The terminology the recognition rules and the enrichment read — catalog, QC records, code maps — cached per
 * process by generation: every write batch asks the database for the generation number (one `_id` equality) and
 * reads the terminology again only when it moved. A written map, QC record or catalog moves it (the domain's
 * afterWrite hook), so several hub instances see an edit as soon as it is written; nothing is shared in
 * memory but a cache that the database validates.
 */
import type { SideCollections } from '../fhir/side-collections.ts';
import type { FhirRepository } from '../fhir/repository.ts';
import type { Terminology } from './normalise.ts';
import { RecognitionService } from './recognition-service.ts';

interface Generation {
  _id: string;
  n: number;
}

const generations = (collections: SideCollections) => collections.collection<Generation>('recognition_terminology');

async function generationOf(collections: SideCollections): Promise<number> {
  return (await generations(collections).findOne({ _id: 'generation' }))?.n ?? 0;
}

/** Marks the terminology as changed: every process reads it again before its next write. */
export async function bumpTerminology(collections: SideCollections): Promise<void> {
  await generations(collections).updateOne({ _id: 'generation' }, { $inc: { n: 1 } }, { upsert: true });
}

/** Loads the terminology in force, reading it again only when its generation moved. */
export class TerminologyCache {
  private cached: { generation: number; terminology: Promise<Terminology> } | undefined;

  async current(store: FhirRepository, collections: SideCollections): Promise<Terminology> {
    const generation = await generationOf(collections);
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

