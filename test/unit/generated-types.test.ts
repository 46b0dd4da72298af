// The generated module makes mistakes compile errors: a misspelt table, a wrong identity type.
// Checked with the TypeScript compiler itself (through ts-morph), on snippets kept in memory.
import { Project } from 'ts-morph';
import { describe, expect, it } from 'vitest';

const project = new Project({ tsConfigFilePath: 'tsconfig.json', skipAddingFilesFromTsConfig: true });
project.addSourceFileAtPath('runtime/generated.ts');

function errors(body: string): string[] {
  const file = project.createSourceFile(
    'test/unit/__typed_snippet.ts',
    `import { Kysely } from 'kysely';
import { identity, type Database } from '../../runtime/generated.ts';
import { withKyselySession } from '../../runtime/index.ts';
declare const db: Kysely<Database>;
export async function snippet() {
${body}
}
`,
    { overwrite: true },
  );
  return file.getPreEmitDiagnostics().map((d) => String(typeof d.getMessageText() === 'string' ? d.getMessageText() : (d.getMessageText() as { getMessageText(): string }).getMessageText()));
}

describe('runtime/generated.ts', () => {
  it('accepts correct tables, columns and identities', () => {
    expect(
      errors(`
  const rows = await withKyselySession(db, identity('smartoffice', 11), (trx) => trx.selectFrom('smartoffice.contacts').select(['id', 'name']).execute());
  const name: string | null = rows[0]!.name;
  await withKyselySession(db, identity('collect', 'nina'), (trx) => trx.selectFrom('collect.debtor_directory').select('restricted').execute());
  return name;`),
    ).toEqual([]);
  });
  it('rejects a misspelt table', () => {
    expect(errors(`await db.selectFrom('smartoffice.contact').selectAll().execute();`).join('\n')).toMatch(/smartoffice\.contact/);
  });
  it('rejects an identity of the wrong type or an unknown schema', () => {
    expect(errors(`identity('collect', 7);`).join('\n')).toMatch(/not assignable to parameter of type 'string'/);
    expect(errors(`identity('smartofice', 7);`).join('\n')).toMatch(/smartofice/);
  });
});
