import { MongoClient } from 'mongodb';
const c = new MongoClient(process.argv[2] ?? 'mongodb://127.0.0.1:27200/');
const db = c.db('synthea');
const obs = await db.collection<any>('Observation').findOne({});
const patient = obs.sp.patient[0];
for (const filter of [{ _id: obs._id }, { 'sp.patient': patient }, { 'sp.code': 'http://loinc.org|718-7' }, { 'sp.patient': { $in: [patient] } }, { _id: { $in: [obs._id] } }]) {
  const plan = await db.command({ explain: { find: 'Observation', filter } });
  const t = performance.now(); const n = (await db.collection('Observation').find(filter).toArray()).length; const ms = performance.now() - t;
  console.log(JSON.stringify(filter).slice(0, 70).padEnd(72), 'pushdown', plan.filterPushdown, 'n', n, ms.toFixed(1), 'ms', JSON.stringify(plan.queryPlanner).slice(0, 200));
}
await c.close();
