// SuperOffice CRM (seed 003): a role × object type × scope rights matrix kept as data, with user
// kinds that override it, predefined roles shipped as seed rows, and functional rights.
// The contract is ../shared/reference-models.md, section "superoffice".
import { and, arrayOf, defineModel, or, rightsMatrix, scalarOf, t, when, type Columns, type TableHandle } from '../generator/dsl/index.ts';

const LEVELS = ['none', 'read', 'create', 'update', 'delete'] as const;
const OBJECTS = ['company', 'contact', 'project', 'sale'] as const;
const SCOPES = ['own', 'primary_group', 'secondary_group', 'others'] as const;
type Level = (typeof LEVELS)[number];

/** Predefined roles of seed 003, with data rights per scope (own, primary group, secondary group,
 *  others) that follow their descriptions; the same for every object type unless noted. */
export const PREDEFINED_ROLES: readonly { id: number; name: string; rights: readonly [Level, Level, Level, Level]; objects?: readonly string[]; functions: readonly string[] }[] = [
  { id: 1, name: 'User level 0', rights: ['delete', 'delete', 'delete', 'delete'], functions: ['admin', 'bulk_update', 'export', 'mail_merge', 'publish', 'quote_approval'] },
  { id: 2, name: 'User level 1', rights: ['delete', 'delete', 'delete', 'delete'], functions: ['bulk_update', 'export', 'mail_merge', 'publish', 'quote_approval'] },
  { id: 3, name: 'User level 2', rights: ['delete', 'delete', 'delete', 'read'], functions: ['export', 'mail_merge'] },
  { id: 4, name: 'User level 3', rights: ['delete', 'read', 'read', 'read'], functions: ['mail_merge'] },
  { id: 5, name: 'User level 4', rights: ['delete', 'read', 'read', 'none'], functions: [] },
  { id: 6, name: 'User level 5', rights: ['create', 'read', 'read', 'read'], functions: [] },
  { id: 7, name: 'List administrator', rights: ['delete', 'delete', 'delete', 'delete'], functions: ['list_admin', 'export'] },
  { id: 8, name: 'User administrator', rights: ['delete', 'delete', 'delete', 'delete'], functions: ['user_admin'] },
  { id: 9, name: 'Local user', rights: ['delete', 'read', 'read', 'none'], functions: [] },
  { id: 10, name: 'External user', rights: ['read', 'read', 'read', 'read'], objects: ['company', 'project'], functions: [] },
  { id: 11, name: 'Anonymous user', rights: ['none', 'none', 'none', 'none'], functions: [] },
  { id: 12, name: 'System user', rights: ['delete', 'delete', 'delete', 'delete'], functions: ['admin', 'bulk_update', 'export', 'list_admin', 'mail_merge', 'publish', 'quote_approval', 'user_admin'] },
];

export default defineModel(
  'superoffice',
  (m) => {
    // ------------------------------------------------------------------ tables
    const userGroups = m.table('user_groups', { id: t.bigint().primaryKey(), name: t.text() });
    const roles = m.table('roles', { id: t.bigint().primaryKey(), name: t.text().unique() });
    const roleRights = m.table(
      'role_rights',
      {
        role_id: t.bigint().notNull().references(roles),
        object_type: t.text().notNull().oneOf(OBJECTS),
        scope: t.text().notNull().oneOf(SCOPES),
        rights: t.text().notNull().oneOf(LEVELS),
      },
      { primaryKey: ['role_id', 'object_type', 'scope'] },
    );
    const roleFunctions = m.table(
      'role_functions',
      { role_id: t.bigint().notNull().references(roles), function_name: t.text().notNull() },
      { primaryKey: ['role_id', 'function_name'] },
    );
    const users = m.table('users', {
      id: t.bigint().primaryKey(),
      name: t.text(),
      role_id: t.bigint().notNull().references(roles),
      primary_group_id: t.bigint().notNull().references(userGroups),
      kind: t.text().notNull().default('internal').oneOf(['internal', 'external', 'anonymous', 'system']),
    });
    const secondaryGroups = m.table(
      'user_secondary_groups',
      { user_id: t.bigint().notNull().references(users), group_id: t.bigint().notNull().references(userGroups) },
      { primaryKey: ['user_id', 'group_id'] },
    );
    const owned = (extra: Columns = {}) => ({
      id: t.bigint().primaryKey(),
      ...extra,
      name: t.text(),
      owner_id: t.bigint().notNull().references(users),
      group_id: t.bigint().notNull().references(userGroups),
      published: t.boolean().default(false),
    });
    const companies = m.table('companies', owned());
    const contacts = m.table('contacts', owned({ company_id: t.bigint().references('companies') }));
    const projects = m.table('projects', owned());
    const sales = m.table('sales', owned({ amount: t.numeric(12, 2) }));

    m.identity(users);
    const me = m.me;

    // ------------------------------------------------------------------ seed data: predefined roles
    m.seed(roles, PREDEFINED_ROLES.map((r) => ({ id: r.id, name: r.name })));
    m.seed(
      roleRights,
      PREDEFINED_ROLES.flatMap((r) =>
        OBJECTS.flatMap((object) =>
          SCOPES.map((scope, i) => ({ role_id: r.id, object_type: object, scope, rights: !r.objects || r.objects.includes(object) ? r.rights[i]! : 'none' })),
        ),
      ),
    );
    m.seed(roleFunctions, PREDEFINED_ROLES.flatMap((r) => r.functions.map((f) => ({ role_id: r.id, function_name: f }))));

    // ------------------------------------------------------------------ facts about the acting user
    const myKind = m.fact('my_kind', scalarOf(m.from(users, (u) => ({ where: u.id.eq(me), select: u.kind }))));
    const myRole = m.fact('my_role_id', scalarOf(m.from(users, (u) => ({ where: u.id.eq(me), select: u.role_id }))));
    const myPrimaryGroup = m.fact('my_primary_group_id', scalarOf(m.from(users, (u) => ({ where: u.id.eq(me), select: u.primary_group_id }))));
    // A group (a department) holds a large share of the contacts: a user in more than one
    // secondary group is better served by the primary-key walk than by reading all of theirs.
    const mySecondaryGroups = m.fact('my_secondary_group_ids', arrayOf(m.from(secondaryGroups, (g) => ({ where: g.user_id.eq(me), select: g.group_id }))), {
      planHint: { few: 1 },
    });
    const iAmSystem = m.fact('i_am_system', when(myKind.eq('system'), true, false), { description: "Kind 'system' overrides every rule." });
    const iAmExternal = m.fact('i_am_external', when(myKind.eq('external'), true, false), { description: "Kind 'external': read only, published companies and projects." });

    const matrix = rightsMatrix(m, {
      rights: { table: roleRights, role: 'role_id', object: 'object_type', scope: 'scope', level: 'rights' },
      levels: LEVELS,
      needs: { select: 'read', insert: 'create', update: 'update', delete: 'delete' },
      role: myRole,
      // Only internal users are governed by their role; the other kinds override it.
      applies: myKind.eq('internal'),
      scopes: [
        { name: 'own', column: 'owner_id', is: me },
        { name: 'primary_group', column: 'group_id', is: myPrimaryGroup },
        { name: 'secondary_group', column: 'group_id', in: mySecondaryGroups },
      ],
      otherwise: 'others',
    });

    // ------------------------------------------------------------------ the four object types
    const objects: [TableHandle<Columns>, (typeof OBJECTS)[number], boolean][] = [
      [companies, 'company', true],
      [contacts, 'contact', false],
      [projects, 'project', true],
      [sales, 'sale', false],
    ];
    for (const [table, object, externalsRead] of objects) {
      const name = table.name;
      const system = () => m.everyRowWhen(table, iAmSystem);
      m.policy(table, `${name}_select`, {
        for: 'select',
        description: `Read right on the row's scope (highest right over its scopes wins); system users: all${externalsRead ? '; external users: published rows' : ''}.`,
        using: (r) =>
          or(
            matrix.allows(table, object, 'select')(r),
            system(),
            ...(externalsRead ? [and(r.published!.isTrue(), m.everyRowWhen(table, iAmExternal))] : []),
          ),
        // Contacts and sales name their company, and whoever sees them mostly sees it too (same
        // scopes): a join from them to companies should walk their key, not sort every row.
        lookup: table === companies,
      });
      m.policy(table, `${name}_insert`, { for: 'insert', description: 'Create right on the scope of the new row.', check: (r) => or(matrix.allows(table, object, 'insert')(r), system()) });
      const update = (r: Parameters<ReturnType<typeof matrix.allows>>[0]) => or(matrix.allows(table, object, 'update')(r), system());
      m.policy(table, `${name}_update`, { for: 'update', description: 'Update right on the row as it is and as it will be.', using: update, check: update });
      m.policy(table, `${name}_delete`, { for: 'delete', description: 'Delete right on the scope of the row.', using: (r) => or(matrix.allows(table, object, 'delete')(r), system()) });
    }

    // ------------------------------------------------------------------ the matrix itself, users, groups
    const iMayRead = m.fact('i_am_staff', or(myKind.eq('internal'), myKind.eq('system')), { type: 'boolean', description: 'Internal or system users: the staff of the CRM.' });
    m.policy(roles, 'roles_select', { for: 'select', description: 'Internal and system users see the role list.', using: () => m.everyRowWhen(roles, iMayRead) });
    m.policy(roleRights, 'role_rights_select', { for: 'select', description: 'Everyone sees the rights of their own role.', using: (r) => r.role_id.eq(myRole) });
    m.policy(roleFunctions, 'role_functions_select', { for: 'select', description: 'Everyone sees the functional rights of their own role.', using: (r) => r.role_id.eq(myRole) });
    m.policy(userGroups, 'user_groups_select', { for: 'select', description: 'Internal and system users see the group list.', using: () => iMayRead.isTrue() });
    m.policy(users, 'users_select', {
      for: 'select',
      description: 'Myself; internal and system users see every user (owners are shown on every record).',
      using: (u) => or(u.id.eq(me), m.everyRowWhen(users, iMayRead)),
    });
    m.policy(secondaryGroups, 'user_secondary_groups_select', { for: 'select', description: 'My own secondary groups.', using: (g) => g.user_id.eq(me) });

    // ------------------------------------------------------------------ functional rights
    const myFunctions = m.fact(
      'my_function_names',
      when(or(myKind.eq('internal'), myKind.eq('system')), arrayOf(m.from(roleFunctions, (f) => ({ where: f.role_id.eq(myRole), select: f.function_name })))),
      { description: 'The functional rights of my role (bulk update, export, …).' },
    );
    m.membershipFunction('can', {
      argument: 'function_name',
      type: 'text',
      set: myFunctions,
      description: 'Whether the acting user\'s role has this functional right, e.g. superoffice.can(\'export\').',
    });
    m.reportingView('companies_report', {
      table: companies,
      description: 'For BI tools: the companies the caller may read, with owner and group names.',
      columns: (c) => ({
        id: c.id,
        name: c.name,
        published: c.published!,
        owner_name: scalarOf(m.from(users, (u) => ({ where: u.id.eq(c.owner_id!), select: u.name }))),
        group_name: scalarOf(m.from(userGroups, (g) => ({ where: g.id.eq(c.group_id!), select: g.name }))),
      }),
    });
  },
  { description: 'SuperOffice: a data-driven role × scope × rights matrix' },
);
