/**
 * A validation thread (see validation-pool.ts): validates the resources it is sent and answers, for each,
 * nothing or the refusal (code, message, OperationOutcome). Nothing else happens here: no database, no state.
 */
import { parentPort } from 'node:worker_threads';
import { HubError } from '../errors.ts';
import { ensureStructureDefinitions } from './definitions.ts';
import { validateFhirResource } from './validation.ts';

export interface ValidationRequest {
  id: number;
  resources: unknown[];
}

export interface Refusal {
  code: HubError['code'];
  message: string;
  outcome?: HubError['outcome'];
}

export interface ValidationResponse {
  id: number;
  /** per resource: null when valid */
  refusals: (Refusal | null)[];
  /** a fault of the thread itself (never a refusal of the input) */
  fault?: string;
}

ensureStructureDefinitions();
parentPort!.on('message', ({ id, resources }: ValidationRequest) => {
  try {
    const refusals = resources.map((resource): Refusal | null => {
      try {
        validateFhirResource(resource);
        return null;
      } catch (error) {
        if (error instanceof HubError) return { code: error.code, message: error.message, ...(error.outcome ? { outcome: error.outcome } : {}) };
        throw error;
      }
    });
    parentPort!.postMessage({ id, refusals } satisfies ValidationResponse);
  } catch (error) {
    parentPort!.postMessage({ id, refusals: [], fault: error instanceof Error ? error.message : String(error) } satisfies ValidationResponse);
  }
});
parentPort!.postMessage({ id: 0, refusals: [] } satisfies ValidationResponse);
