#!/usr/bin/env node
// Policy files are TypeScript: tsx's loader lets Node import them (and the toolkit) directly.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../generator/cli/main.ts');
try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`rowguard: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
}
