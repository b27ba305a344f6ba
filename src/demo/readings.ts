/**
 * Demo remote readings of a year (issue 15, item 5): township and community members send ECGs, X-rays, CTs and
 * ultrasounds to the provincial hospital's reading centre, read within (or sometimes past) their targets, a few
 * ECGs with STEMI raising critical values — all acknowledged but one, escalated — so the reading queue, the
 * turnaround and the cockpit have data on `npm start`. Run through the real workflow with a moving clock.
 */
import type { SideCollections } from '../fhir/side-collections.ts';
import type { FhirRepository } from '../fhir/repository.ts';
import { ReadingService } from '../reading/reading-service.ts';
import type { Modality, Urgency } from '../reading/rules.ts';

export const DEMO_READING_CENTRE = 'org-jiangnan-provincial';
const REQUESTERS: [organization: string, patient: string][] = [
  ['org-taolin-township', 'pat-taolin-township-001'],
  ['org-changtang-township', 'pat-changtang-township-001'],
  ['org-baiyangtian-township', 'pat-baiyangtian-township-001'],
  ['org-chengnan-community', 'pat-chengnan-community-001'],
];
const KINDS: [Modality, Urgency, minutes: number][] = [
  ['ECG', 'ROUTINE', 18],
  ['ECG', 'URGENT', 7],
  ['ECG', 'ROUTINE', 41],
  ['DR', 'ROUTINE', 95],
  ['CT', 'URGENT', 26],
  ['US', 'ROUTINE', 50],
  ['ECG', 'STAT', 6],
  ['DR', 'ROUTINE', 150],
];

/** The readings of the twelve months before `now` (8 a month), and 3 still waiting in the queue. */
export async function seedDemoReadings(store: FhirRepository, collections: SideCollections, now = new Date()): Promise<number> {
  const probe = new ReadingService(store, undefined, collections, { clientId: 'demo-seed', anySide: true });
  await probe.ensureIndexes();
  if ((await probe.facts.estimatedDocumentCount()) > 0) return 0;
  let clock = now;
  const service = new ReadingService(store, undefined, collections, { clientId: 'demo-seed', anySide: true }, () => clock);
  let count = 0;
  let stemi = 0;
  for (let back = 12; back >= 1; back--) {
    for (let n = 0; n < KINDS.length; n++) {
      const [modality, urgency, minutes] = KINDS[(n + back) % KINDS.length]!;
      const [from, patient] = REQUESTERS[(n + back) % REQUESTERS.length]!;
      const requested = new Date(now.getTime() - back * 30 * 24 * 3600_000 + n * 2 * 24 * 3600_000 + 9 * 3600_000);
      clock = requested;
      const reading = await service.request({ patient, modality, urgency, centre: DEMO_READING_CENTRE, from, reason: modality === 'ECG' ? '胸闷心悸待查' : '体检复查' });
      clock = new Date(requested.getTime() + Math.max(1, Math.floor(minutes / 3)) * 60_000);
      await service.claim(reading.id, ['王主任', '李医生', '陈医生'][n % 3]!);
      clock = new Date(requested.getTime() + minutes * 60_000);
      const critical = modality === 'ECG' && back % 3 === 0 && n % 2 === 1;
      const { critical: raised } = await service.report(reading.id, {
        conclusion: critical ? '窦性心律，II、III、aVF 导联ST段抬高，考虑急性下壁心肌梗死' : modality === 'ECG' ? '窦性心律，正常心电图' : '未见明显异常',
        ...(critical ? { findings: ['http://snomed.info/sct|401303003'] } : {}),
      });
      for (const notification of raised) {
        stemi++;
        // Acknowledged within minutes, but the last one of the year was missed (escalated below).
        if (back === 3 && stemi > 1) continue;
        clock = new Date(clock.getTime() + (4 + stemi) * 60_000);
        await service.acknowledge(notification.id!, '接诊医生');
      }
      count++;
    }
  }
  clock = now;
  await service.escalate();
  // A few waiting now, so the queue is not empty.
  for (const [index, [modality, urgency]] of ([['ECG', 'STAT'], ['CT', 'URGENT'], ['ECG', 'ROUTINE']] as [Modality, Urgency][]).entries()) {
    clock = new Date(now.getTime() - (index + 1) * 7 * 60_000);
    await service.request({ patient: REQUESTERS[index]![1], modality, urgency, centre: DEMO_READING_CENTRE, from: REQUESTERS[index]![0], reason: '待判读' });
    count++;
  }
  return count;
}
