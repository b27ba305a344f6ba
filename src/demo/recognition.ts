/**
 * Demo data of result recognition: the catalog (66 items), the members' QC records (one lab that failed its
 * lab EQA, one imaging certificate expired), a township's code map for its own LIS codes, and results of 王伟
 * (national ID 43062120021114011X) that show each decision at the county hospital: a township haemoglobin coded
 * `XCG-HGB` in g/dL (mapped), one coded `XCG-WBC` (not mapped), a glucose just inside and one just outside its
 * validity, a preliminary result, a chest CT and an abdominal ultrasound.
 */
import type { ConceptMap, DiagnosticReport, ImagingStudy, Observation, Patient, VerificationResult } from '@medplum/fhirtypes';
import type { SideCollections } from '../fhir/side-collections.ts';
import type { FhirRepository } from '../fhir/repository.ts';
import { RecognitionDecisions, type DecisionInput } from '../recognition/decisions.ts';
import type { DeclineReason } from '../recognition/rules.ts';
import { catalogCodeSystem } from '../recognition/catalog.ts';
import { LOCAL_CODES_PREFIX } from '../recognition/recognition-service.ts';

export const TAOLIN_LIS = 'https://demo.consortium-hub.cn/CodeSystem/taolin-lis';
export const DEMO_RECOGNITION_PATIENT = 'pat-taolin-township-001';

const qc = (id: string, organization: string, location: string, programme: string, status: 'validated' | 'val-fail', from: string, until: string): VerificationResult => ({
  resourceType: 'VerificationResult',
  id,
  target: [{ reference: `Organization/${organization}` }],
  targetLocation: [location],
  status,
  statusDate: `${from}T00:00:00+08:00`,
  validationProcess: [{ coding: [{ system: 'https://demo.consortium-hub.cn/CodeSystem/qc-programme', code: programme }], text: programme === 'NCCL' ? '国家卫健委临检中心室间质评' : '省影像质控中心' }],
  lastPerformed: `${from}T00:00:00+08:00`,
  nextScheduled: until,
  validator: [{ organization: { display: programme === 'NCCL' ? '国家卫生健康委临床检验中心' : '江南省医学影像质控中心' } }],
});

/** QC records of the demo members in a year: every lab passed but 西山县人民医院's, whose imaging certificate also ran out. */
export function demoQualifications(year = 2026): VerificationResult[] {
  const members = ['jiangnan-provincial', 'donghu-county', 'taolin-township', 'changtang-township', 'baiyangtian-township', 'chengnan-community'];
  return [
    ...members.flatMap((member) => [
      qc(`qc-${member}-lab-${year}`, `org-${member}`, 'category:LAB', 'NCCL', 'validated', `${year}-01-01`, `${year}-12-31`),
      ...(['DR', 'CT', 'MR', 'US', 'ECG'] as const).map((category) => qc(`qc-${member}-${category.toLowerCase()}-${year}`, `org-${member}`, `category:${category}`, 'IMAGING_QC', 'validated', `${year}-01-01`, `${year}-12-31`)),
    ]),
    qc(`qc-xishan-county-lab-${year}`, 'org-xishan-county', 'category:LAB', 'NCCL', 'val-fail', `${year}-03-01`, `${year}-12-31`),
    qc(`qc-xishan-county-ct-${year}`, 'org-xishan-county', 'category:CT', 'IMAGING_QC', 'validated', `${year - 1}-01-01`, `${year}-06-30`),
  ];
}

export function demoCodeMap(): ConceptMap {
  return {
    resourceType: 'ConceptMap',
    id: 'map-taolin-township-lis',
    url: 'https://demo.consortium-hub.cn/ConceptMap/taolin-township-lis',
    name: 'TaolinTownshipLis',
    title: '桃林镇卫生院 LIS 项目代码对照',
    status: 'active',
    sourceUri: `${LOCAL_CODES_PREFIX}org-taolin-township`,
    targetUri: 'http://loinc.org',
    group: [
      {
        source: TAOLIN_LIS,
        target: 'http://loinc.org',
        element: [
          { code: 'XCG-HGB', display: '血红蛋白', target: [{ code: '718-7', display: 'Hemoglobin [Mass/volume] in Blood', equivalence: 'equivalent' }] },
          { code: 'XCG-PLT', display: '血小板', target: [{ code: '777-3', display: 'Platelets [#/volume] in Blood', equivalence: 'equivalent' }] },
          { code: 'SH-GLU', display: '葡萄糖', target: [{ code: '2345-7', display: 'Glucose [Mass/volume] in Serum or Plasma', equivalence: 'equivalent' }] },
        ],
      },
    ],
  };
}

const day = (now: Date, daysAgo: number, hour = 9): string => {
  const china = new Date(now.getTime() + 8 * 3600_000 - daysAgo * 24 * 3600_000);
  return `${china.toISOString().slice(0, 10)}T${String(hour).padStart(2, '0')}:00:00+08:00`;
};

/** 王伟's results for the demo decisions, dated relative to `now`. */
export function demoRecognitionResults(now: Date): (Observation | DiagnosticReport)[] {
  const subject = { reference: `Patient/${DEMO_RECOGNITION_PATIENT}`, display: '王伟' };
  const taolin = [{ reference: 'Organization/org-taolin-township', display: '东湖县桃林镇卫生院' }];
  const lab = (id: string, code: { system: string; code: string; display: string }, value: { value: number; unit: string; code: string }, daysAgo: number, status: Observation['status'] = 'final'): Observation => ({
    resourceType: 'Observation',
    id,
    status,
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] }],
    code: { coding: [code], text: code.display },
    subject,
    effectiveDateTime: day(now, daysAgo, 8),
    issued: day(now, daysAgo, 15).replace('+08:00', '.000+08:00'),
    performer: taolin,
    valueQuantity: { ...value, system: 'http://unitsofmeasure.org' },
  });
  const imaging = (id: string, loinc: string, display: string, daysAgo: number, conclusion: string): DiagnosticReport => ({
    resourceType: 'DiagnosticReport',
    id,
    status: 'final',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0074', code: 'RAD' }] }],
    code: { coding: [{ system: 'http://loinc.org', code: loinc, display }], text: display },
    subject,
    effectiveDateTime: day(now, daysAgo, 10),
    issued: day(now, daysAgo, 16).replace('+08:00', '.000+08:00'),
    performer: taolin,
    conclusion,
  });
  return [
    lab('rec-hgb-local', { system: TAOLIN_LIS, code: 'XCG-HGB', display: '血红蛋白' }, { value: 12.8, unit: 'g/dL', code: 'g/dL' }, 3),
    lab('rec-wbc-local', { system: TAOLIN_LIS, code: 'XCG-WBC', display: '白细胞' }, { value: 6.2, unit: '10*9/L', code: '10*9/L' }, 3),
    lab('rec-glu-inside', { system: 'http://loinc.org', code: '2345-7', display: 'Glucose' }, { value: 7.9, unit: 'mmol/L', code: 'mmol/L' }, 14),
    lab('rec-glu-outside', { system: 'http://loinc.org', code: '2345-7', display: 'Glucose' }, { value: 8.4, unit: 'mmol/L', code: 'mmol/L' }, 15),
    lab('rec-crp-prelim', { system: 'http://loinc.org', code: '1988-5', display: 'C reactive protein' }, { value: 12, unit: 'mg/L', code: 'mg/L' }, 1, 'preliminary'),
    imaging('rec-ct-chest', '24627-2', 'CT Chest', 10, '双肺纹理增粗，未见明显占位。'),
    imaging('rec-us-abdomen', '24558-9', 'US Abdomen', 2, '肝胆胰脾未见明显异常。'),
  ];
}

/** The chest CT's study (recognition(at:) on ImagingStudy: acquisition time, LOINC procedure code, performing member). */
export function demoImagingStudy(now: Date): ImagingStudy {
  return {
    resourceType: 'ImagingStudy',
    id: 'rec-ct-chest-study',
    status: 'available',
    subject: { reference: `Patient/${DEMO_RECOGNITION_PATIENT}`, display: '王伟' },
    started: day(now, 10, 10),
    identifier: [{ system: 'urn:dicom:uid', value: 'urn:oid:2.25.1786230011499023845561002300' }],
    modality: [{ system: 'http://dicom.nema.org/resources/ontology/DCM', code: 'CT' }],
    procedureCode: [{ coding: [{ system: 'http://loinc.org', code: '24627-2', display: 'CT Chest' }], text: '胸部CT平扫' }],
    description: '胸部CT平扫',
    numberOfSeries: 1,
    numberOfInstances: 120,
    series: [
      {
        uid: '2.25.1786230011499023845561002301',
        modality: { system: 'http://dicom.nema.org/resources/ontology/DCM', code: 'CT' },
        description: '胸部平扫 5mm',
        numberOfInstances: 120,
        bodySite: { system: 'http://snomed.info/sct', code: '51185008', display: 'Thoracic structure' },
        performer: [{ actor: { reference: 'Organization/org-taolin-township', display: '东湖县桃林镇卫生院' } }],
      },
    ],
  };
}

/** Items, issuers and deciders of the demo decisions of a year. */
const HISTORY_ITEMS: [loinc: string, display: string, kind: 'lab' | 'imaging', value?: [number, string]][] = [
  ['718-7', 'Hemoglobin', 'lab', [132, 'g/L']],
  ['2345-7', 'Glucose', 'lab', [6.1, 'mmol/L']],
  ['1742-6', 'ALT', 'lab', [32, 'U/L']],
  ['2160-0', 'Creatinine', 'lab', [78, 'umol/L']],
  ['3016-3', 'TSH', 'lab', [2.1, 'm[IU]/L']],
  ['24627-2', 'CT Chest', 'imaging'],
  ['36643-5', 'XR Chest', 'imaging'],
  ['24725-4', 'CT Head', 'imaging'],
  ['24590-2', 'MR Brain', 'imaging'],
  ['2093-3', 'Cholesterol', 'lab', [4.8, 'mmol/L']],
];
const HISTORY_ISSUERS = ['org-taolin-township', 'org-changtang-township', 'org-chengnan-community', 'org-donghu-county'];
const HISTORY_PATIENTS = ['pat-taolin-township-001', 'pat-changtang-township-001', 'pat-chengnan-community-001', 'pat-donghu-county-001'];
const HISTORY_REASONS: DeclineReason[] = ['CONDITION_CHANGED', 'RAPID_CHANGE', 'MAJOR_INTERVENTION', 'PATIENT_REQUEST', 'EMERGENCY', 'PHYSICIAN_JUDGMENT'];

/** The demo decisions of the twelve months before `now` (10 a month): results, then each decided two days after collection. */
export function planDemoDecisions(now: Date, perMonth = 10): { result: Observation | DiagnosticReport; input: DecisionInput; decidedAt: Date }[] {
  const plans: { result: Observation | DiagnosticReport; input: DecisionInput; decidedAt: Date }[] = [];
  const china = new Date(now.getTime() + 8 * 3600_000);
  for (let back = 12; back >= 1; back--) {
    const month = new Date(Date.UTC(china.getUTCFullYear(), china.getUTCMonth() - back, 1));
    const label = month.toISOString().slice(0, 7);
    for (let n = 0; n < perMonth; n++) {
      const [loinc, display, kind, value] = HISTORY_ITEMS[(n + back) % HISTORY_ITEMS.length]!;
      const issuer = HISTORY_ISSUERS[n % HISTORY_ISSUERS.length]!;
      const collected = `${label}-${String(3 + 2 * n).padStart(2, '0')}T08:30:00+08:00`;
      const decidedAt = new Date(new Date(collected).getTime() + 2 * 24 * 3600_000);
      const common = {
        id: `rec-hist-${label}-${n}`,
        status: 'final' as const,
        code: { coding: [{ system: 'http://loinc.org', code: loinc, display }], text: display },
        subject: { reference: `Patient/${HISTORY_PATIENTS[n % HISTORY_PATIENTS.length]}` },
        effectiveDateTime: collected,
        issued: collected.replace('T08:30:00', 'T15:00:00'),
        performer: [{ reference: `Organization/${issuer}` }],
      };
      const result: Observation | DiagnosticReport =
        kind === 'lab'
          ? { resourceType: 'Observation', ...common, category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] }], valueQuantity: { value: value![0], unit: value![1], system: 'http://unitsofmeasure.org', code: value![1] } }
          : { resourceType: 'DiagnosticReport', ...common, category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0074', code: 'RAD' }] }], conclusion: '未见明显异常。' };
      // Seven in ten recognised; the others declined with a reason, most ordering the repeat.
      const accepted = (n * 7 + back) % 10 < 7;
      const at = issuer === 'org-donghu-county' || n % 3 === 0 ? 'org-jiangnan-provincial' : 'org-donghu-county';
      const reason = HISTORY_REASONS[(n + back) % HISTORY_REASONS.length]!;
      plans.push({
        result,
        decidedAt,
        input: accepted
          ? { result: `${result.resourceType}/${result.id}`, at, accepted: true }
          : { result: `${result.resourceType}/${result.id}`, at, accepted: false, reason, text: '门诊医师决定复查', patientInformedAt: decidedAt.toISOString(), orderRepeat: n % 4 !== 0 },
      });
    }
  }
  return plans;
}

/** Records the demo decisions of a year (once: nothing when decisions exist). */
export async function seedDemoDecisions(store: FhirRepository, collections: SideCollections, now = new Date(), markText = 'HR'): Promise<number> {
  const decisions = new RecognitionDecisions(store, collections, markText);
  await decisions.ensureIndexes();
  if ((await decisions.facts.estimatedDocumentCount()) > 0) return 0;
  const plans = planDemoDecisions(now);
  await store.putMany(plans.map((plan) => plan.result));
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < plans.length) {
      const plan = plans[next++]!;
      await new RecognitionDecisions(store, collections, markText, {}, () => plan.decidedAt).record(plan.input);
    }
  };
  await Promise.all([worker(), worker(), worker()]);
  return plans.length;
}

/** Writes the catalog, QC records and the code map, then the demo results (put: a second run changes nothing new). */
/**
 * The playground's throwaway record: a demo patient of the township, kept apart from the residents of the demo, with
 * one recognisable glucose result that the playground's writing examples decide on (each run adds a decision
 * there, never in a resident's record).
 */
export const PLAYGROUND_PATIENT = 'pat-playground-001';
export const PLAYGROUND_RESULT = 'rec-glu-playground';

function playgroundRecords(now: Date): (Patient | Observation)[] {
  return [
    {
      resourceType: 'Patient',
      id: PLAYGROUND_PATIENT,
      identifier: [{ system: 'https://demo.consortium-hub.cn/sid/taolin-township/mrn', value: 'TL-PLAYGROUND' }],
      name: [{ text: '体验患者（演示专用）', family: '体验', given: ['患者'] }],
      gender: 'unknown',
      managingOrganization: { reference: 'Organization/org-taolin-township', display: '东湖县桃林镇卫生院' },
    },
    {
      resourceType: 'Observation',
      id: PLAYGROUND_RESULT,
      status: 'final',
      category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] }],
      code: { coding: [{ system: 'http://loinc.org', code: '2345-7', display: 'Glucose' }], text: 'Glucose' },
      subject: { reference: `Patient/${PLAYGROUND_PATIENT}`, display: '体验患者（演示专用）' },
      effectiveDateTime: day(now, 5, 8),
      issued: day(now, 5, 15).replace('+08:00', '.000+08:00'),
      performer: [{ reference: 'Organization/org-taolin-township', display: '东湖县桃林镇卫生院' }],
      valueQuantity: { value: 6.8, unit: 'mmol/L', code: 'mmol/L', system: 'http://unitsofmeasure.org' },
    },
  ];
}

export async function seedDemoRecognition(store: FhirRepository, now = new Date()): Promise<number> {
  const year = Number(new Date(now.getTime() + 8 * 3600_000).toISOString().slice(0, 4));
  // Last year's QC records too: the demo decisions of the past twelve months were made under them.
  const terminology = [catalogCodeSystem(), ...demoQualifications(year - 1), ...demoQualifications(year), demoCodeMap()];
  const results = [...demoRecognitionResults(now), demoImagingStudy(now), ...playgroundRecords(now)];
  // The terminology first: results are enriched with the catalog, QC records and maps in force when written.
  await store.putMany(terminology);
  await store.putMany(results);
  return terminology.length + results.length;
}

