/**
 * The printable referral form (双向转诊单): an A4 HTML page in Chinese with the stub (存根) and the form body
 * (上转单 or 回转单), from the referral as the GraphQL API returns it (so the same access policy and audit apply).
 * No script, no asset from elsewhere: it prints offline.
 */

/** The GraphQL query whose answer the page is drawn from. */
export const REFERRAL_FORM_QUERY = `query ReferralForm($id: ID!) {
  referral(id: $id) {
    id type status priority submittedAt dueAt appointment department statusReason
    patient { id name { text family given } gender birthDate telecom { value } address { text } identifier { system value type { coding { system code } } } managingOrganization { reference } }
    from { name telecom { value } }
    to { name }
    form { identifier { value } reasonCode { text } note { text } requester { reference display } }
    admissionCertificate { identifier { value } occurrencePeriod { start end } note { text } }
    attachments
  }
}`;

interface FormData {
  id: string;
  type: string;
  status: string;
  priority: string;
  submittedAt: string;
  dueAt: string;
  appointment?: string | null;
  department?: string | null;
  statusReason?: string | null;
  patient?: {
    id: string;
    name?: { text?: string; family?: string; given?: string[] }[];
    gender?: string;
    birthDate?: string;
    telecom?: { value?: string }[];
    address?: { text?: string }[];
    identifier?: { system?: string; value?: string; type?: { coding?: { system?: string; code?: string }[] } }[];
    managingOrganization?: { reference?: string } | null;
  } | null;
  from?: { name?: string; telecom?: { value?: string }[] } | null;
  to?: { name?: string } | null;
  form?: { identifier?: { value?: string }[]; reasonCode?: { text?: string }[]; note?: { text?: string }[] } | null;
  admissionCertificate?: { identifier?: { value?: string }[]; occurrencePeriod?: { start?: string; end?: string }; note?: { text?: string }[] } | null;
  attachments?: AttachedResult[];
}

/** An attached result as the API returns it (its FHIR JSON): what the form shows of it. */
interface AttachedResult {
  resourceType?: string;
  id?: string;
  code?: { text?: string; coding?: { display?: string; code?: string }[] };
  valueQuantity?: { value?: number; unit?: string; code?: string };
  valueString?: string;
  valueCodeableConcept?: { text?: string; coding?: { display?: string }[] };
  conclusion?: string;
  effectiveDateTime?: string;
  issued?: string;
  meta?: { tag?: { system?: string; code?: string; display?: string }[] };
}

const V2_IDENTIFIER_TYPE = 'http://terminology.hl7.org/CodeSystem/v2-0203';

/**
 * The record number (病案号) of the patient's record at its member: the identifier typed MR (HL7 v2 table 0203),
 * else the first that is not the national ID. The hub's own id is not a record number.
 */
export function recordNumber(patient: NonNullable<FormData['patient']>, nationalIdSystem: string): string {
  const identifiers = patient.identifier ?? [];
  const typed = identifiers.find((identifier) => identifier.type?.coding?.some((coding) => coding.system === V2_IDENTIFIER_TYPE && coding.code === 'MR'));
  return (typed ?? identifiers.find((identifier) => identifier.system !== nationalIdSystem))?.value ?? '';
}

/** An attached result by its name, value (or conclusion) and date, with the recognition mark where it has one. */
export function describeResult(result: AttachedResult): string {
  const name = result.code?.text ?? result.code?.coding?.find((coding) => coding.display)?.display ?? result.code?.coding?.[0]?.code ?? result.resourceType ?? '';
  const quantity = result.valueQuantity;
  const value = quantity?.value !== undefined ? `${quantity.value}${quantity.unit ?? quantity.code ? ` ${quantity.unit ?? quantity.code}` : ''}` : (result.valueString ?? result.valueCodeableConcept?.text ?? result.valueCodeableConcept?.coding?.[0]?.display ?? result.conclusion ?? '');
  const date = chinaTime(result.effectiveDateTime ?? result.issued).slice(0, 10);
  const mark = result.meta?.tag?.find((tag) => tag.code === 'RECOGNIZABLE')?.display;
  return [name, value, date, mark ? `（互认 ${mark}）` : ''].filter(Boolean).join(' ');
}

const escape = (text: unknown): string =>
  String(text ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const typeNames: Record<string, string> = { UP: '上转', DOWN: '下转（回转）', GREEN_CHANNEL: '绿色通道', PRE_ADMISSION: '预住院' };
const statusNames: Record<string, string> = {
  DRAFT: '草稿', SUBMITTED: '已提交', UNDER_REVIEW: '审核中', ACCEPTED: '已接收', REJECTED: '已拒绝', ARRIVED: '已到院',
  NO_SHOW: '未到院', CANCELLED: '已取消', COMPLETED: '已完成', CLOSED: '已闭环',
};
const priorityNames: Record<string, string> = { routine: '普通', urgent: '紧急', stat: '特急' };
const genderNames: Record<string, string> = { male: '男', female: '女', other: '其他', unknown: '未知' };

function chinaTime(iso: string | null | undefined): string {
  if (!iso) return '';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return new Date(date.getTime() + 8 * 3600_000).toISOString().slice(0, 16).replace('T', ' ');
}

function age(birthDate: string | undefined, at: string): string {
  if (!birthDate) return '';
  const born = new Date(birthDate);
  const now = new Date(at);
  let years = now.getUTCFullYear() - born.getUTCFullYear();
  if (now.getUTCMonth() < born.getUTCMonth() || (now.getUTCMonth() === born.getUTCMonth() && now.getUTCDate() < born.getUTCDate())) years--;
  return `${years}岁`;
}

/** The note of the form that starts with a label (初步印象, 主要既往史, ...). */
const noteOf = (data: FormData, label: string): string => (data.form?.note ?? []).map((n) => n.text ?? '').find((text) => text.startsWith(label))?.replace(/^[^:：]*[:：]\s*/, '') ?? '';

export function renderReferralForm(data: FormData, nationalIdSystem: string): string {
  const patient = data.patient;
  const name = patient?.name?.[0]?.text ?? `${patient?.name?.[0]?.family ?? ''}${(patient?.name?.[0]?.given ?? []).join('')}`;
  const nationalId = patient?.identifier?.find((identifier) => identifier.system === nationalIdSystem)?.value ?? '';
  const number = data.form?.identifier?.[0]?.value ?? data.id;
  const down = data.type === 'DOWN';
  const title = down ? '双向转诊（回转）单' : '双向转诊（转出）单';
  const row = (label: string, value: unknown, wide = false): string => `<div class="f${wide ? ' wide' : ''}"><span class="l">${escape(label)}</span><span class="v">${escape(value)}</span></div>`;
  const attachments = (data.attachments ?? []).map(describeResult);
  const certificate = data.admissionCertificate;
  return `<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<title>${escape(title)} ${escape(number)}</title>
<style>
  @page { size: A4; margin: 14mm; }
  * { box-sizing: border-box; }
  body { font-family: "Noto Sans CJK SC", "Noto Serif CJK SC", "Source Han Sans SC", "Microsoft YaHei", "SimSun", sans-serif; font-size: 11pt; color: #000; margin: 0; }
  .sheet { width: 182mm; margin: 0 auto; }
  h1 { font-size: 17pt; text-align: center; margin: 4mm 0 2mm; letter-spacing: 2pt; }
  h2 { font-size: 12pt; margin: 3mm 0 1mm; border-bottom: 1px solid #000; }
  .meta { display: flex; justify-content: space-between; font-size: 10pt; }
  .grid { display: flex; flex-wrap: wrap; }
  .f { width: 50%; padding: 1mm 0; display: flex; }
  .f.wide { width: 100%; }
  .l { white-space: nowrap; margin-right: 2mm; }
  .v { border-bottom: 1px solid #000; flex: 1; min-height: 5mm; }
  .cut { border-top: 1px dashed #000; margin: 6mm 0; text-align: center; font-size: 9pt; }
  .sign { display: flex; justify-content: space-between; margin-top: 6mm; }
</style>
</head>
<body>
<div class="sheet">
  <section class="stub" aria-label="存根">
    <h1>${escape(title)}（存根）</h1>
    <div class="meta"><span>转诊编号：${escape(number)}</span><span>类型：${escape(typeNames[data.type] ?? data.type)}</span><span>状态：${escape(statusNames[data.status] ?? data.status)}</span></div>
    <div class="grid">
      ${row('患者姓名', name)}${row('性别', genderNames[patient?.gender ?? ''] ?? '')}
      ${row('年龄', age(patient?.birthDate, data.submittedAt))}${row('病案号', patient ? recordNumber(patient, nationalIdSystem) : '')}
      ${row('身份证号', nationalId)}${row('联系电话', patient?.telecom?.[0]?.value)}
      ${row('家庭住址', patient?.address?.[0]?.text, true)}
      ${row('转往机构', data.to?.name)}${row('科室', data.department ?? noteOf(data, '接收科室'))}
      ${row('转出机构', data.from?.name)}${row('转诊日期', chinaTime(data.submittedAt))}
    </div>
  </section>
  <div class="cut">（沿此线剪开）</div>
  <section class="body" aria-label="${escape(title)}">
    <h1>${escape(title)}</h1>
    <p><span class="recipient">${escape(data.to?.name)}</span>：</p>
    <p>现有患者 <b class="patient-name">${escape(name)}</b>（${escape(genderNames[patient?.gender ?? ''] ?? '')}，${escape(age(patient?.birthDate, data.submittedAt))}）因病情需要，需转入贵单位，请予以接诊。</p>
    <h2>${down ? '诊疗情况' : '病情摘要'}</h2>
    <div class="grid">
      ${row(down ? '诊断结果' : '初步印象', noteOf(data, '初步印象') || (data.form?.reasonCode?.[0]?.text ?? ''), true)}
      ${row(down ? '转诊原因' : '转出原因（主要现病史）', data.form?.reasonCode?.[0]?.text, true)}
      ${row('主要既往史', noteOf(data, '主要既往史'), true)}
      ${row('治疗经过', noteOf(data, '治疗经过'), true)}
      ${row('过敏史', noteOf(data, '过敏史'))}${row('医保类型', noteOf(data, '医保类型'))}
      <div class="f wide"><span class="l">附检查检验结果</span><span class="v">${attachments.map((line) => `<span class="result">${escape(line)}</span>`).join('；')}</span></div>
      ${row('预约时间', chinaTime(data.appointment))}${row('优先级', priorityNames[data.priority] ?? data.priority)}
      ${certificate ? row('电子住院证', `${certificate.identifier?.[0]?.value ?? ''}（${certificate.occurrencePeriod?.start ?? ''} 至 ${certificate.occurrencePeriod?.end ?? ''}）${certificate.note?.[0]?.text ?? ''}`, true) : ''}
      ${data.statusReason ? row('拒绝/取消原因', data.statusReason, true) : ''}
    </div>
    <div class="sign"><span>转诊医生（签字）：</span><span>联系电话：${escape(data.from?.telecom?.[0]?.value)}</span></div>
    <div class="sign"><span class="sender">${escape(data.from?.name)}（盖章）</span><span>${escape(chinaTime(data.submittedAt).slice(0, 10))}</span></div>
  </section>
</div>
</body>
</html>`;
}
