/**
 * A remote reading as FHIR: the request is a `ServiceRequest` (what to read, for whom, from which member, to which
 * reading centre, the study in `supportingInfo`), its work item a `Task` (`code` reading, `focus` the request,
 * `requester` the requesting member, `owner` the reading centre, `priority`, `input` modality and study, the reader
 * who claimed it in the extension `reading-reader`, `output` the DiagnosticReport). The Task is versioned by the
 * store, so a claim is a compare-and-set on its version: of two readers claiming one study, one wins.
 */
import type { Task } from '@medplum/fhirtypes';
import { modalities, type Modality, type ReadingStatus, type Urgency } from './rules.ts';

export const READING_SYSTEM = 'https://demo.consortium-hub.cn/CodeSystem/remote-reading';
export const READER_EXTENSION = 'https://demo.consortium-hub.cn/fhir/StructureDefinition/reading-reader';
/** The category a reading's report carries beside its diagnostic service section: the reading workflow wrote it. */
export const READING_REPORT_CODE = 'reading-report';

const statusOfTask: Record<string, ReadingStatus> = { requested: 'REQUESTED', 'in-progress': 'CLAIMED', completed: 'REPORTED', cancelled: 'CANCELLED' };
export const taskStatusOf: Record<ReadingStatus, Task['status']> = { REQUESTED: 'requested', CLAIMED: 'in-progress', REPORTED: 'completed', CANCELLED: 'cancelled' };
const urgencyOfPriority: Record<string, Urgency> = { routine: 'ROUTINE', urgent: 'URGENT', asap: 'URGENT', stat: 'STAT' };
export const priorityOf: Record<Urgency, Task['priority']> = { ROUTINE: 'routine', URGENT: 'urgent', STAT: 'stat' };

export interface ReadingFacts {
  status: ReadingStatus;
  modality: Modality;
  urgency: Urgency;
  requestedAt: Date;
  /** `Organization/<id>` */
  requester?: string;
  centre?: string;
  patient?: string;
  request?: string;
  study?: string;
  reader?: string;
  report?: string;
}

export function isReadingTask(task: Task): boolean {
  return (task.code?.coding ?? []).some((coding) => coding.system === READING_SYSTEM && coding.code === 'reading');
}

export function readingOf(task: Task): ReadingFacts | undefined {
  if (!isReadingTask(task)) return undefined;
  const input = (code: string) => task.input?.find((item) => item.type.coding?.some((coding) => coding.system === READING_SYSTEM && coding.code === code));
  const modality = input('modality')?.valueCode as Modality | undefined;
  if (!modality || !(modalities as readonly string[]).includes(modality)) return undefined;
  const reader = task.extension?.find((extension) => extension.url === READER_EXTENSION)?.valueString;
  const report = task.output?.find((output) => output.valueReference?.reference?.startsWith('DiagnosticReport/'))?.valueReference?.reference;
  return {
    status: statusOfTask[task.status] ?? 'REQUESTED',
    modality,
    urgency: urgencyOfPriority[task.priority ?? 'routine'] ?? 'ROUTINE',
    requestedAt: new Date(task.authoredOn ?? 0),
    ...(task.requester?.reference ? { requester: task.requester.reference } : {}),
    ...(task.owner?.reference ? { centre: task.owner.reference } : {}),
    ...(task.for?.reference ? { patient: task.for.reference } : {}),
    ...(task.focus?.reference ? { request: task.focus.reference } : {}),
    ...(input('study')?.valueReference?.reference ? { study: input('study')!.valueReference!.reference! } : {}),
    ...(reader ? { reader } : {}),
    ...(report ? { report } : {}),
  };
}
