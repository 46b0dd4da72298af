import { startDatabase } from '../generator/db/server.ts';
const s = await startDatabase({ dataDir: `/tmp/adv-serve`, preferEmbedded: true });
console.log(s.url);
process.on('SIGTERM', async () => { await s.stop(); process.exit(0); });
setInterval(() => {}, 1000);
