// The smallest rights matrix that exercises rightsMatrix (generator/dsl/rights.ts): one scope rule
// ('own': the row's owner_id is the acting user), the otherwise scope, three levels, the role read
// from the acting user's row. For unit tests of what it compiles to.
import { rightsMatrix, scalarOf, type Columns, type ModelBuilder, type RightsMatrix, type TableHandle } from '../../generator/dsl/index.ts';

export function ownOrOthersMatrix(m: ModelBuilder, tables: { readonly rights: TableHandle<Columns>; readonly users: TableHandle<Columns> }): RightsMatrix {
  return rightsMatrix(m, {
    rights: { table: tables.rights, role: 'role_id', object: 'object', scope: 'scope', level: 'level' },
    levels: ['none', 'read', 'write'],
    needs: { select: 'read', insert: 'write', update: 'write', delete: 'write' },
    role: m.fact('my_role', scalarOf(m.from(tables.users, (u) => ({ where: u['id']!.eq(m.me), select: u['role_id']! })))),
    applies: m.me.isNotNull(),
    scopes: [{ name: 'own', column: 'owner_id', is: m.me }],
    otherwise: 'others',
  });
}
