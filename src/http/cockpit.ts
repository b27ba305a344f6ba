/**
 * The consortium cockpit (数字驾驶舱) at `/cockpit`: one page served by the hub with everything it needs (ECharts
 * from the installed `echarts` package, no CDN, no web font: the system's CJK fonts), in Chinese with an English
 * toggle. An administrator signs in with its client id and secret (exchanged for a token in the page, kept in the
 * tab's sessionStorage); every figure comes from the same GraphQL statistics queries any client can call, asked
 * once a minute, so the wall refreshes itself without reloading.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
export const COCKPIT_ASSET_PREFIX = '/cockpit/assets/';
const echartsFile = join(dirname(require.resolve('echarts/package.json')), 'dist', 'echarts.min.js');
let echarts: Buffer | undefined;

export function cockpitAsset(name: string): { body: Buffer; type: string } | undefined {
  if (name === 'cockpit.js') return { body: (cockpitScript ??= Buffer.from(script)), type: 'text/javascript' };
  if (name !== 'echarts.min.js') return undefined;
  echarts ??= readFileSync(echartsFile);
  return { body: echarts, type: 'text/javascript' };
}
let cockpitScript: Buffer | undefined;

/** The one GraphQL query of the page: the statistics of the last twelve months, the queue, the members' syncs. */
export const COCKPIT_QUERY = `query Cockpit($from: String!, $to: String!, $fromMonth: String!, $toMonth: String!, $centre: ID!) {
  byMonth: referralStatistics(from: $from, to: $to, groupBy: MONTH) { key up down downUpRatio greenChannel greenChannelWithin10Minutes greenChannelMedianMinutes medianMinutesToAccept }
  byMember: referralStatistics(from: $from, to: $to, groupBy: ORGANIZATION) { key up down referrals }
  savings: recognitionStatistics(from: $from, to: $to, groupBy: CATEGORY) { institutionsWithPassingQc rows { key recognized feesSavedYuan declined repeatsOrdered } }
  reading: readingStatistics(from: $fromMonth, to: $toMonth) { rows { modality urgency readings late medianMinutes targetMinutes critical } criticalValues { sent acknowledged escalated medianAckMinutes } }
  queue: readingQueue(centre: $centre, status: REQUESTED, _count: 100) { items { id modality urgency overdue requestedAt requester { name } } }
  members: OrganizationList(_count: 100) { id name }
  sync: memberSyncStatus { organization lastSuccessAt lagSeconds lastError }
}`;

const style = `
html, body { margin: 0; height: 100%; background: #0b1a33; color: #dfe8f7; font-family: "Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", system-ui, sans-serif; }
header { display: flex; align-items: center; gap: 16px; padding: 10px 20px; background: #0f2347; border-bottom: 1px solid #1f3b6b; }
header h1 { font-size: 22px; margin: 0; flex: 1; letter-spacing: 2px; }
header button, #login button { font: inherit; background: #1f4d8f; color: #fff; border: 0; padding: 4px 12px; border-radius: 3px; cursor: pointer; }
#updated { font-size: 13px; color: #9fb3d1; }
#kpis { display: grid; grid-template-columns: repeat(6, 1fr); gap: 12px; padding: 12px 20px 0; }
.kpi { background: #12284f; border: 1px solid #1f3b6b; border-radius: 6px; padding: 8px 12px; }
.kpi b { display: block; font-size: 26px; color: #4fd1ff; }
.kpi span { font-size: 13px; color: #9fb3d1; }
#grid { display: grid; grid-template-columns: repeat(3, 1fr); grid-auto-rows: 300px; gap: 12px; padding: 12px 20px 20px; }
.panel { background: #12284f; border: 1px solid #1f3b6b; border-radius: 6px; padding: 6px; display: flex; flex-direction: column; }
.panel h2 { font-size: 15px; margin: 2px 6px 4px; color: #bcd3f5; font-weight: 600; }
.chart { flex: 1; min-height: 0; }
table { width: 100%; border-collapse: collapse; font-size: 13px; }
td, th { padding: 3px 6px; border-bottom: 1px solid #1f3b6b; text-align: left; }
#login[hidden] { display: none; }
#login { position: fixed; inset: 0; display: flex; align-items: center; justify-content: center; background: rgba(5, 12, 26, 0.92); }
#login form { background: #12284f; padding: 24px 28px; border-radius: 8px; display: grid; gap: 10px; min-width: 320px; }
#login input { font: inherit; padding: 4px 8px; }
#login .error { color: #ff8a80; min-height: 1.2em; }
`;

/**
 * The page's script (served as an asset: the page's Content-Security-Policy allows no inline script): sign-in,
 * the query, the charts. Strings of both languages in one table. Every text from the API is put on the page as
 * text (textContent, or canvas for the charts), never as markup.
 */
const script = `
const text = {
  zh: { title: '医联体数字驾驶舱', updated: '更新于', lang: 'English', login: '管理员登录', clientId: '客户端 ID', secret: '密钥', signIn: '登录', signOut: '退出',
    up: '上转', down: '下转', ratio: '下转/上转比', referrals: '双向转诊（按月）', byMember: '各成员单位接收转诊', green: '绿色通道响应（10分钟内）', greenWithin: '10分钟内响应', greenAll: '绿色通道', greenMedian: '中位响应（分钟）',
    savings: '检查检验结果互认节省费用（元）', recognised: '互认项目数', saved: '节省费用', reading: '远程诊断周转时间（分钟）', median: '中位', target: '目标', queue: '待判读队列', overdue: '超时',
    critical: '危急值', sent: '发出', acked: '已确认', escalated: '超时升级', freshness: '成员数据同步', member: '成员单位', lastSync: '最近同步', lag: '延迟', noSync: '未登记成员 FHIR 接口',
    kReferrals: '年度转诊', kRatio: '下转/上转', kSaved: '互认节省（元）', kReadings: '远程诊断', kCritical: '危急值确认率', kQueue: '待判读' },
  en: { title: 'Consortium cockpit', updated: 'Updated', lang: '中文', login: 'Administrator sign-in', clientId: 'Client id', secret: 'Secret', signIn: 'Sign in', signOut: 'Sign out',
    up: 'Up', down: 'Down', ratio: 'Down/up ratio', referrals: 'Two-way referrals by month', byMember: 'Referrals received per member', green: 'Green channel within 10 min', greenWithin: 'within 10 min', greenAll: 'green channel', greenMedian: 'median minutes',
    savings: 'Result recognition: fees saved (yuan)', recognised: 'items recognised', saved: 'fees saved', reading: 'Remote reading turnaround (minutes)', median: 'median', target: 'target', queue: 'Reading queue', overdue: 'overdue',
    critical: 'Critical values', sent: 'sent', acked: 'acknowledged', escalated: 'escalated', freshness: 'Member data sync', member: 'member', lastSync: 'last sync', lag: 'lag', noSync: 'no member FHIR endpoint registered',
    kReferrals: 'referrals (12 months)', kRatio: 'down/up', kSaved: 'saved (yuan)', kReadings: 'remote readings', kCritical: 'critical values acknowledged', kQueue: 'waiting to be read' },
};
let lang = sessionStorage.getItem('cockpit-lang') || 'zh';
let data = null;
const charts = {};
const $ = (id) => document.getElementById(id);
const t = (key) => text[lang][key];
const centre = new URLSearchParams(location.search).get('centre') || 'org-jiangnan-provincial';

function range() {
  const now = new Date(Date.now() + 8 * 3600 * 1000);
  const to = now.toISOString().slice(0, 10);
  const start = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 11, 1));
  return { from: start.toISOString().slice(0, 10), to, fromMonth: start.toISOString().slice(0, 7), toMonth: to.slice(0, 7), centre };
}

async function signIn(event) {
  event.preventDefault();
  $('login-error').textContent = '';
  const body = new URLSearchParams({ grant_type: 'client_credentials', client_id: $('client-id').value, client_secret: $('client-secret').value });
  const response = await fetch('/oauth/token', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok || !answer.access_token) { $('login-error').textContent = answer.error_description || answer.error || response.status; return; }
  sessionStorage.setItem('cockpit-token', answer.access_token);
  $('login').hidden = true;
  refresh();
}

async function refresh() {
  const token = sessionStorage.getItem('cockpit-token');
  if (!token) { $('login').hidden = false; return; }
  const response = await fetch('/graphql', { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer ' + token }, body: JSON.stringify({ query: ${JSON.stringify(COCKPIT_QUERY)}, variables: range() }) });
  if (response.status === 401) { sessionStorage.removeItem('cockpit-token'); $('login').hidden = false; return; }
  const answer = await response.json();
  if (answer.errors) { $('updated').textContent = answer.errors[0].message; if (!answer.data) return; }
  data = answer.data;
  window.cockpitData = data;
  render();
}

const axis = { axisLabel: { color: '#9fb3d1' }, axisLine: { lineStyle: { color: '#3a5a8c' } }, splitLine: { lineStyle: { color: '#1f3b6b' } } };
const legend = () => ({ textStyle: { color: '#dfe8f7' }, top: 0 });
function chart(id, option) {
  charts[id] = charts[id] || echarts.init($(id), null, { renderer: 'canvas' });
  charts[id].setOption({ animation: false, backgroundColor: 'transparent', textStyle: { fontFamily: 'Noto Sans CJK SC, Microsoft YaHei, sans-serif' }, grid: { left: 50, right: 20, top: 30, bottom: 30 }, tooltip: { trigger: 'axis' }, ...option }, true);
}
const nameOf = (reference) => { const id = (reference || '').replace('Organization/', ''); return (data.members.find((m) => m.id === id) || {}).name || id; };
/** An element with text children (strings become text nodes) and a class. */
function el(tag, className, ...children) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

function render() {
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
  for (const el of document.querySelectorAll('[data-t]')) el.textContent = t(el.dataset.t);
  $('updated').textContent = t('updated') + ' ' + new Date().toLocaleTimeString(lang === 'zh' ? 'zh-CN' : 'en-GB');
  const months = data.byMonth.map((row) => row.key);
  const sum = (rows, key) => rows.reduce((n, row) => n + (row[key] || 0), 0);
  const up = sum(data.byMonth, 'up'), down = sum(data.byMonth, 'down');
  const crit = data.reading.criticalValues;
  const kpis = [[t('kReferrals'), up + down], [t('kRatio'), up ? (down / up).toFixed(2) : '—'], [t('kSaved'), Math.round(sum(data.savings.rows, 'feesSavedYuan')).toLocaleString()], [t('kReadings'), sum(data.reading.rows, 'readings')], [t('kCritical'), crit.sent ? Math.round(100 * crit.acknowledged / crit.sent) + '%' : '—'], [t('kQueue'), data.queue.items.length]];
  $('kpis').replaceChildren(...kpis.map(([label, value]) => el('div', 'kpi', el('b', '', value), el('span', '', label))));
  chart('c-referrals', { legend: legend(), xAxis: { type: 'category', data: months, ...axis }, yAxis: [{ type: 'value', ...axis }, { type: 'value', ...axis, splitLine: { show: false } }],
    series: [{ name: t('up'), type: 'bar', data: data.byMonth.map((r) => r.up), itemStyle: { color: '#4fa3ff' } }, { name: t('down'), type: 'bar', data: data.byMonth.map((r) => r.down), itemStyle: { color: '#39d98a' } }, { name: t('ratio'), type: 'line', yAxisIndex: 1, data: data.byMonth.map((r) => r.downUpRatio ?? 0), itemStyle: { color: '#ffd166' } }] });
  const members = data.byMember.filter((r) => r.referrals > 0);
  chart('c-members', { legend: legend(), grid: { left: 150, right: 20, top: 30, bottom: 20 }, yAxis: { type: 'category', data: members.map((r) => nameOf(r.key)), ...axis }, xAxis: { type: 'value', ...axis },
    series: [{ name: t('up'), type: 'bar', stack: 'a', data: members.map((r) => r.up), itemStyle: { color: '#4fa3ff' } }, { name: t('down'), type: 'bar', stack: 'a', data: members.map((r) => r.down), itemStyle: { color: '#39d98a' } }] });
  chart('c-green', { legend: legend(), xAxis: { type: 'category', data: months, ...axis }, yAxis: { type: 'value', ...axis },
    series: [{ name: t('greenAll'), type: 'bar', data: data.byMonth.map((r) => r.greenChannel), itemStyle: { color: '#ff6b6b' } }, { name: t('greenWithin'), type: 'bar', data: data.byMonth.map((r) => r.greenChannelWithin10Minutes), itemStyle: { color: '#39d98a' } }, { name: t('greenMedian'), type: 'line', data: data.byMonth.map((r) => r.greenChannelMedianMinutes ?? 0), itemStyle: { color: '#ffd166' } }] });
  chart('c-savings', { tooltip: { trigger: 'item' }, legend: legend(), series: [{ name: t('saved'), type: 'pie', radius: ['35%', '65%'], top: 20, label: { color: '#dfe8f7', formatter: '{b}: {c}' }, data: data.savings.rows.filter((r) => r.feesSavedYuan > 0).map((r) => ({ name: r.key, value: Math.round(r.feesSavedYuan) })) }] });
  const rows = data.reading.rows;
  chart('c-reading', { legend: legend(), xAxis: { type: 'category', data: rows.map((r) => r.modality + ' ' + r.urgency), ...axis, axisLabel: { color: '#9fb3d1', interval: 0, rotate: 20 } }, yAxis: { type: 'value', ...axis },
    series: [{ name: t('median'), type: 'bar', data: rows.map((r) => r.medianMinutes), itemStyle: { color: '#4fa3ff' } }, { name: t('target'), type: 'line', data: rows.map((r) => r.targetMinutes), itemStyle: { color: '#ff6b6b' } }] });
  const queueBy = {};
  for (const item of data.queue.items) { const key = item.modality + ' ' + item.urgency; queueBy[key] = queueBy[key] || { waiting: 0, overdue: 0 }; queueBy[key].waiting++; if (item.overdue) queueBy[key].overdue++; }
  chart('c-queue', { legend: legend(), xAxis: { type: 'category', data: Object.keys(queueBy), ...axis }, yAxis: { type: 'value', minInterval: 1, ...axis },
    series: [{ name: t('queue'), type: 'bar', data: Object.values(queueBy).map((v) => v.waiting), itemStyle: { color: '#4fa3ff' } }, { name: t('overdue'), type: 'bar', data: Object.values(queueBy).map((v) => v.overdue), itemStyle: { color: '#ff6b6b' } }] });
  chart('c-critical', { xAxis: { type: 'category', data: [t('sent'), t('acked'), t('escalated')], ...axis }, yAxis: { type: 'value', minInterval: 1, ...axis },
    series: [{ name: t('critical'), type: 'bar', data: [{ value: crit.sent, itemStyle: { color: '#ffd166' } }, { value: crit.acknowledged, itemStyle: { color: '#39d98a' } }, { value: crit.escalated, itemStyle: { color: '#ff6b6b' } }] }] });
  $('sync').replaceChildren(data.sync.length === 0 ? el('p', '', t('noSync')) : el('table', '',
    el('tr', '', el('th', '', t('member')), el('th', '', t('lastSync')), el('th', '', t('lag'))),
    ...data.sync.map((s) => el('tr', '', el('td', '', nameOf(s.organization)), el('td', '', (s.lastSuccessAt || '—').replace('T', ' ').slice(0, 16)), el('td', '', (s.lagSeconds == null ? '—' : Math.round(s.lagSeconds / 60) + ' min') + (s.lastError ? ' ⚠' : ''))))));
}

window.addEventListener('resize', () => Object.values(charts).forEach((c) => c.resize()));
$('login-form').addEventListener('submit', (event) => signIn(event).catch((error) => ($('login-error').textContent = String(error))));
$('toggle-lang').addEventListener('click', () => { lang = lang === 'zh' ? 'en' : 'zh'; sessionStorage.setItem('cockpit-lang', lang); if (data) render(); else for (const el of document.querySelectorAll('[data-t]')) el.textContent = t(el.dataset.t); });
$('sign-out').addEventListener('click', () => { sessionStorage.removeItem('cockpit-token'); $('login').hidden = false; });
for (const el of document.querySelectorAll('[data-t]')) el.textContent = t(el.dataset.t);
refresh();
setInterval(refresh, 60000);
`;

let page: string | undefined;

/** The page (the same for everyone: the data comes from the API once signed in), built once. */
export function cockpitPage(): string {
  page ??= buildPage();
  return page;
}

function buildPage(): string {
  const panel = (id: string, key: string) => `<section class="panel"><h2 data-t="${key}"></h2><div class="chart" id="${id}"></div></section>`;
  return `<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>医联体数字驾驶舱</title><meta name="viewport" content="width=device-width, initial-scale=1"><style>${style}</style>
<script src="${COCKPIT_ASSET_PREFIX}echarts.min.js"></script></head>
<body>
<header><h1 data-t="title"></h1><span id="updated"></span><button id="toggle-lang" data-t="lang"></button><button id="sign-out" data-t="signOut"></button></header>
<div id="kpis"></div>
<main id="grid">
${panel('c-referrals', 'referrals')}${panel('c-members', 'byMember')}${panel('c-green', 'green')}
${panel('c-savings', 'savings')}${panel('c-reading', 'reading')}${panel('c-queue', 'queue')}
${panel('c-critical', 'critical')}<section class="panel"><h2 data-t="freshness"></h2><div id="sync"></div></section>
</main>
<div id="login" hidden><form id="login-form"><strong data-t="login"></strong>
<label><span data-t="clientId"></span><br><input id="client-id" autocomplete="username" required></label>
<label><span data-t="secret"></span><br><input id="client-secret" type="password" autocomplete="current-password" required></label>
<button type="submit" data-t="signIn"></button><div class="error" id="login-error"></div></form></div>
<script src="${COCKPIT_ASSET_PREFIX}cockpit.js"></script>
</body></html>`;
}
