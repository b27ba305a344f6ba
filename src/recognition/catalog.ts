/**
 * The recognition catalog as FHIR: one `CodeSystem` (id `recognition-catalog`) whose concepts are the items and
 * whose concept properties carry what the rules need — category, standard codes, validity days, QC programme,
 * fee, scope, reference-only, effective dates, item version. Standard FHIR elements only (no extension without a
 * published definition), so it validates as is; every edit is a new version of the CodeSystem in the store, so
 * the catalog's history is kept. Administrators edit it like any resource (`CodeSystemUpdate`).
 */
import type { CodeSystem, CodeSystemConcept } from '@medplum/fhirtypes';
import { defaultValidityDays as days, type CatalogItem, type RecognitionCategory, type Scope } from './rules.ts';

export const CATALOG_ID = 'recognition-catalog';
export const CATALOG_URL = 'https://demo.consortium-hub.cn/CodeSystem/recognition-catalog';
const LOINC = 'http://loinc.org';

interface SeedOptions {
  referenceOnly?: boolean;
  scope?: Scope;
  /** the UCUM unit results are normalised to */
  unit?: string;
  /** g/mol, for mass <-> amount of substance (glucose mg/dL -> mmol/L) */
  molarMass?: number;
}
type Seed = [id: string, zh: string, en: string, category: RecognitionCategory, codes: string[], validityDays: number, feeYuan: number, options?: SeedOptions];

const lab = (id: string, zh: string, en: string, loinc: string, validity: number, fee: number, unit?: string, molarMass?: number): Seed => [
  id,
  zh,
  en,
  'LAB',
  [`${LOINC}|${loinc}`],
  validity,
  fee,
  { ...(unit ? { unit } : {}), ...(molarMass ? { molarMass } : {}) },
];
const imaging = (id: string, zh: string, en: string, category: RecognitionCategory, loinc: string, validity: number, fee: number, referenceOnly = false): Seed => [id, zh, en, category, [`${LOINC}|${loinc}`], validity, fee, { referenceOnly }];

/** The demo consortium's catalog: 66 items with the default validity days of result-recognition.md. */
export const demoCatalogSeeds: Seed[] = [
  // 血常规 complete blood count: 7 days
  lab('LAB-WBC', '白细胞计数', 'Leukocytes', '6690-2', days.cbc, 5, '10*9/L'),
  lab('LAB-RBC', '红细胞计数', 'Erythrocytes', '789-8', days.cbc, 5, '10*12/L'),
  lab('LAB-HGB', '血红蛋白', 'Hemoglobin', '718-7', days.cbc, 5, 'g/L'),
  lab('LAB-HCT', '红细胞压积', 'Hematocrit', '4544-3', days.cbc, 5, '%'),
  lab('LAB-PLT', '血小板计数', 'Platelets', '777-3', days.cbc, 5, '10*9/L'),
  lab('LAB-MCV', '平均红细胞体积', 'MCV', '787-2', days.cbc, 3, 'fL'),
  // 凝血 coagulation: 7 days
  lab('LAB-PT', '凝血酶原时间', 'Prothrombin time', '5902-2', days.coagulation, 12, 's'),
  lab('LAB-APTT', '活化部分凝血活酶时间', 'aPTT', '3173-2', days.coagulation, 12, 's'),
  lab('LAB-INR', '国际标准化比值', 'INR', '6301-6', days.coagulation, 8, '{INR}'),
  lab('LAB-FIB', '纤维蛋白原', 'Fibrinogen', '3255-7', days.coagulation, 15, 'g/L'),
  lab('LAB-DDIMER', 'D-二聚体', 'D-dimer', '48065-7', days.coagulation, 60, 'mg/L'),
  // 电解质 electrolytes and CRP: 7 days
  lab('LAB-K', '钾', 'Potassium', '2823-3', days.electrolytes, 4, 'mmol/L'),
  lab('LAB-NA', '钠', 'Sodium', '2951-2', days.electrolytes, 4, 'mmol/L'),
  lab('LAB-CL', '氯', 'Chloride', '2075-0', days.electrolytes, 4, 'mmol/L'),
  lab('LAB-CA', '钙', 'Calcium', '17861-6', days.electrolytes, 4, 'mmol/L', 40.078),
  lab('LAB-CRP', 'C反应蛋白', 'C reactive protein', '1988-5', days.crp, 30, 'mg/L'),
  // 生化 routine chemistry: 14 days
  lab('LAB-ALT', '丙氨酸氨基转移酶', 'ALT', '1742-6', days.chemistry, 5, 'U/L'),
  lab('LAB-AST', '天门冬氨酸氨基转移酶', 'AST', '1920-8', days.chemistry, 5, 'U/L'),
  lab('LAB-TBIL', '总胆红素', 'Bilirubin total', '1975-2', days.chemistry, 5, 'umol/L', 584.66),
  lab('LAB-DBIL', '直接胆红素', 'Bilirubin direct', '1968-7', days.chemistry, 5, 'umol/L', 584.66),
  lab('LAB-ALB', '白蛋白', 'Albumin', '1751-7', days.chemistry, 5, 'g/L'),
  lab('LAB-TP', '总蛋白', 'Protein total', '2885-2', days.chemistry, 5, 'g/L'),
  lab('LAB-GGT', 'γ-谷氨酰转移酶', 'GGT', '2324-2', days.chemistry, 5, 'U/L'),
  lab('LAB-ALP', '碱性磷酸酶', 'Alkaline phosphatase', '6768-6', days.chemistry, 5, 'U/L'),
  lab('LAB-CREA', '肌酐', 'Creatinine', '2160-0', days.chemistry, 6, 'umol/L', 113.12),
  lab('LAB-UREA', '尿素', 'Urea nitrogen', '3094-0', days.chemistry, 6, 'mmol/L', 28.014),
  lab('LAB-UA', '尿酸', 'Urate', '3084-1', days.chemistry, 6, 'umol/L', 168.11),
  lab('LAB-GLU', '葡萄糖', 'Glucose', '2345-7', days.chemistry, 4, 'mmol/L', 180.156),
  lab('LAB-TC', '总胆固醇', 'Cholesterol', '2093-3', days.chemistry, 5, 'mmol/L', 386.65),
  lab('LAB-TG', '甘油三酯', 'Triglyceride', '2571-8', days.chemistry, 5, 'mmol/L', 885.7),
  lab('LAB-HDL', '高密度脂蛋白胆固醇', 'HDL cholesterol', '2085-9', days.chemistry, 6, 'mmol/L', 386.65),
  lab('LAB-LDL', '低密度脂蛋白胆固醇', 'LDL cholesterol', '18262-6', days.chemistry, 6, 'mmol/L', 386.65),
  lab('LAB-CK', '肌酸激酶', 'Creatine kinase', '2157-6', days.chemistry, 8, 'U/L'),
  lab('LAB-LDH', '乳酸脱氢酶', 'LDH', '2532-0', days.chemistry, 8, 'U/L'),
  // 甲状腺 thyroid and 肿瘤标志物 tumour markers: 30 days
  lab('LAB-TSH', '促甲状腺激素', 'TSH', '3016-3', days.thyroid, 30, 'm[IU]/L'),
  lab('LAB-FT3', '游离三碘甲状腺原氨酸', 'Free T3', '3051-0', days.thyroid, 30, 'pmol/L', 650.97),
  lab('LAB-FT4', '游离甲状腺素', 'Free T4', '3024-7', days.thyroid, 30, 'pmol/L', 776.87),
  lab('LAB-AFP', '甲胎蛋白', 'AFP', '1834-1', days.tumourMarker, 40, 'ug/L'),
  lab('LAB-CEA', '癌胚抗原', 'CEA', '2039-6', days.tumourMarker, 40, 'ug/L'),
  lab('LAB-CA125', '糖类抗原125', 'CA 125', '10334-1', days.tumourMarker, 60, '[U]/mL'),
  lab('LAB-CA199', '糖类抗原19-9', 'CA 19-9', '24108-3', days.tumourMarker, 60, '[U]/mL'),
  lab('LAB-PSA', '前列腺特异性抗原', 'PSA', '2857-1', days.tumourMarker, 50, 'ug/L'),
  // 感染性疾病血清学 infectious serology: 30 days
  lab('LAB-HBSAG', '乙型肝炎表面抗原', 'HBsAg', '5196-1', days.serology, 15),
  lab('LAB-HCV', '丙型肝炎抗体', 'HCV Ab', '16128-1', days.serology, 30),
  lab('LAB-HIV', '人类免疫缺陷病毒抗原抗体', 'HIV 1+2 Ab+Ag', '56888-1', days.serology, 40),
  lab('LAB-TPAB', '梅毒螺旋体抗体', 'Treponema pallidum Ab', '20507-0', days.serology, 25),
  // 糖化血红蛋白 HbA1c: 90 days
  lab('LAB-HBA1C', '糖化血红蛋白', 'Hemoglobin A1c', '4548-4', days.hba1c, 60, '%'),
  // DR 30 days
  imaging('DR-CHEST', '胸部X线摄影', 'XR Chest', 'DR', '36643-5', days.dr, 70),
  imaging('DR-LSPINE', '腰椎X线摄影', 'XR Lumbar spine', 'DR', '24944-1', days.dr, 80),
  imaging('DR-KNEE', '膝关节X线摄影', 'XR Knee', 'DR', '24885-6', days.dr, 70),
  imaging('DR-PELVIS', '骨盆X线摄影', 'XR Pelvis', 'DR', '24895-5', days.dr, 70),
  // CT 30 days
  imaging('CT-HEAD', '头颅CT平扫', 'CT Head', 'CT', '24725-4', days.ct, 200),
  imaging('CT-CHEST', '胸部CT平扫', 'CT Chest', 'CT', '24627-2', days.ct, 260),
  imaging('CT-ABDOMEN', '腹部CT平扫', 'CT Abdomen', 'CT', '24869-0', days.ct, 300),
  imaging('CT-LSPINE', '腰椎CT平扫', 'CT Lumbar spine', 'CT', '24964-9', days.ct, 260),
  // MR 60 days
  imaging('MR-BRAIN', '头颅MR平扫', 'MR Brain', 'MR', '24590-2', days.mr, 500),
  imaging('MR-LSPINE', '腰椎MR平扫', 'MR Lumbar spine', 'MR', '24967-2', days.mr, 520),
  imaging('MR-KNEE', '膝关节MR平扫', 'MR Knee', 'MR', '26223-8', days.mr, 520),
  // 超声 and 心电图: 7 days, reference only
  imaging('US-ABDOMEN', '腹部超声', 'US Abdomen', 'US', '24558-9', days.ultrasound, 120, true),
  imaging('US-THYROID', '甲状腺超声', 'US Thyroid', 'US', '24842-7', days.ultrasound, 90, true),
  imaging('US-ECHO', '超声心动图', 'Echocardiography', 'US', '34552-0', days.ultrasound, 180, true),
  imaging('ECG-12', '十二导联心电图', 'ECG 12 lead', 'ECG', '11524-6', days.ecg, 25, true),
  imaging('ECG-HOLTER', '动态心电图', 'Holter ECG', 'ECG', '18754-2', days.ecg, 200, true),
  // 核医学 nuclear medicine: 30 days
  imaging('NM-BONE', '全身骨显像', 'NM Bone scan', 'NM', '39734-9', 30, 600),
  imaging('NM-THYROID', '甲状腺显像', 'NM Thyroid', 'NM', '39868-5', 30, 300),
  // 病理 pathology: 30 days
  ['PATH-CYTO', '宫颈细胞学检查', 'Cervical cytology', 'PATHOLOGY', [`${LOINC}|10524-7`], 30, 150],
];

const QC_PROGRAMME: Record<RecognitionCategory, string> = { LAB: 'NCCL', DR: 'IMAGING_QC', CT: 'IMAGING_QC', MR: 'IMAGING_QC', US: 'IMAGING_QC', ECG: 'IMAGING_QC', NM: 'IMAGING_QC', PATHOLOGY: 'PROVINCIAL_PATHOLOGY_QC' };

/** The catalog CodeSystem of a list of items (version N of the catalog). */
export function catalogCodeSystem(seeds: Seed[] = demoCatalogSeeds, effectiveFrom = '2025-01-01'): CodeSystem {
  return {
    resourceType: 'CodeSystem',
    id: CATALOG_ID,
    url: CATALOG_URL,
    version: '1',
    name: 'RecognitionCatalog',
    title: '医联体检查检验结果互认项目目录',
    status: 'active',
    content: 'complete',
    date: `${effectiveFrom}T00:00:00+08:00`,
    publisher: '医联体管理办公室',
    property: [
      { code: 'category', type: 'code', description: 'LAB, DR, CT, MR, US, ECG, NM, PATHOLOGY' },
      { code: 'standardCode', type: 'string', description: 'system|code of a standard code naming the item (LOINC)' },
      { code: 'validityDays', type: 'integer', description: 'reference time limit in days from specimen collection / image acquisition' },
      { code: 'qcProgramme', type: 'code', description: 'the quality-control programme an issuer must pass' },
      { code: 'feeYuan', type: 'decimal', description: 'fee of a repeat, for the savings' },
      { code: 'scope', type: 'code', description: 'CONSORTIUM or SAME_OR_HIGHER_LEVEL' },
      { code: 'referenceOnly', type: 'boolean', description: 'shown for reference, not recognised' },
      { code: 'unit', type: 'string', description: 'the UCUM unit quantities are normalised to on ingest' },
      { code: 'molarMass', type: 'decimal', description: 'g/mol, to convert mass to amount of substance (glucose 180.156)' },
      { code: 'itemVersion', type: 'integer' },
      { code: 'effectiveFrom', type: 'dateTime' },
      { code: 'effectiveTo', type: 'dateTime' },
    ],
    concept: seeds.map(([id, zh, en, category, codes, validityDays, feeYuan, { referenceOnly = false, scope = 'CONSORTIUM', unit, molarMass } = {}]): CodeSystemConcept => ({
      code: id,
      display: zh,
      designation: [{ language: 'en', value: en }],
      property: [
        { code: 'category', valueCode: category },
        ...codes.map((code) => ({ code: 'standardCode', valueString: code })),
        { code: 'validityDays', valueInteger: validityDays },
        { code: 'qcProgramme', valueCode: QC_PROGRAMME[category] },
        { code: 'feeYuan', valueDecimal: feeYuan },
        { code: 'scope', valueCode: scope },
        { code: 'referenceOnly', valueBoolean: referenceOnly },
        ...(unit ? [{ code: 'unit', valueString: unit }] : []),
        ...(molarMass ? [{ code: 'molarMass', valueDecimal: molarMass }] : []),
        { code: 'itemVersion', valueInteger: 1 },
        { code: 'effectiveFrom', valueDateTime: `${effectiveFrom}T00:00:00+08:00` },
      ],
    })),
  };
}

/** The items of a catalog CodeSystem, as the rules read them. */
export function catalogItems(codeSystem: CodeSystem): CatalogItem[] {
  return (codeSystem.concept ?? []).map((concept) => {
    const properties = concept.property ?? [];
    const one = (code: string) => properties.find((property) => property.code === code);
    const date = (code: string): string | undefined => {
      const value = one(code)?.valueDateTime;
      return value ? new Date(new Date(value).getTime() + 8 * 3600_000).toISOString().slice(0, 10) : undefined;
    };
    const effectiveTo = date('effectiveTo');
    return {
      id: concept.code,
      version: one('itemVersion')?.valueInteger ?? 1,
      nameZh: concept.display ?? concept.code,
      nameEn: concept.designation?.find((designation) => designation.language === 'en')?.value ?? concept.code,
      category: (one('category')?.valueCode ?? 'LAB') as RecognitionCategory,
      codes: properties.filter((property) => property.code === 'standardCode').map((property) => property.valueString ?? ''),
      validityDays: one('validityDays')?.valueInteger ?? 0,
      qcProgramme: one('qcProgramme')?.valueCode ?? '',
      feeYuan: one('feeYuan')?.valueDecimal ?? 0,
      scope: (one('scope')?.valueCode ?? 'CONSORTIUM') as Scope,
      referenceOnly: one('referenceOnly')?.valueBoolean ?? false,
      ...(one('unit')?.valueString ? { unit: one('unit')!.valueString! } : {}),
      ...(one('molarMass')?.valueDecimal ? { molarMass: one('molarMass')!.valueDecimal! } : {}),
      effectiveFrom: date('effectiveFrom') ?? '1970-01-01',
      ...(effectiveTo ? { effectiveTo } : {}),
    };
  });
}
