// Collect! (seed 004): account access control for debtors. Operators and nested teams in four
// routing fields, a switchboard of per-operator security flags applied in Collect!'s order, a
// client hierarchy, and a non-strict directory that shows placeholders for hidden accounts.
// The contract is ../shared/reference-models.md, section "collect".
//
// Every rule reads facts about the acting operator. Each fact is NULL (or empty) when its branch
// of the switchboard does not apply, so each policy arm is a plain `col = any(fact)`, one
// `ARRAY[routing fields] && fact` (anyOf), or a key range an index can drive, and the branches
// never need a bare boolean OR'd into the predicate.
import { and, anyOf, array, defineModel, exists, not, or, scalarOf, t, union, when, type E, type RowOf } from '../generator/dsl/index.ts';

export default defineModel(
  'collect',
  (m) => {
    // ------------------------------------------------------------------ tables
    const clients = m.table('clients', {
      id: t.bigint().primaryKey(),
      owned_by: t.bigint().references('clients'),
      name: t.text(),
    });
    const operators = m.table('operators', {
      id: t.text().primaryKey(),
      name: t.text(),
      security: t.boolean().default(false),
      strict: t.boolean().default(false),
      locked_out: t.boolean().default(false),
      client_id: t.bigint().references(clients),
      apply_to_client_accounts: t.boolean().default(false),
      kind: t.text().default('operator').oneOf(['operator', 'client']),
    });
    const teams = m.table('teams', { id: t.text().primaryKey(), name: t.text() });
    // A member is an operator id or a team id (they never collide), so member_id has no foreign key.
    const teamMembers = m.table(
      'team_members',
      { team_id: t.text().notNull().references(teams), member_id: t.text().notNull() },
      { primaryKey: ['team_id', 'member_id'] },
    );
    const debtors = m.table('debtors', {
      id: t.bigint().primaryKey(),
      file_number: t.text(),
      client_id: t.bigint().references(clients),
      name: t.text(),
      address: t.text(),
      phone: t.text(),
      operator_id: t.text(),
      sales_id: t.text(),
      clerk_id: t.text(),
      access_id: t.text(),
      last_worked: t.date(),
      owing: t.numeric(12, 2),
      group_number: t.text(),
      group_member_number: t.text(),
    }, {
      // The "open accounts" arm (no Clerk, no Access) gets its own index: its key range is then
      // one index scan without a Filter, instead of the whole key index ANDed with clerk_id IS NULL.
      indexes: [
        { name: 'debtors_open_accounts_idx', columns: ['id'], where: (d) => and(d.clerk_id.isNull(), d.access_id.isNull()) },
        // The rules read the routing fields through one GIN index (anyOf below); applications look
        // debtors up by one of them (a collector's work list by Operator), so each keeps its own.
        { columns: ['operator_id'] },
        { columns: ['sales_id'] },
        { columns: ['clerk_id'] },
        { columns: ['access_id'] },
      ],
    });

    m.identity(operators); // collect.set_session(operator_id text)
    const me = m.me;
    // Teams contain operators and teams to any depth; the walkers use UNION, so a cycle
    // (T1 ⊃ T2 ⊃ T3 ⊃ T1) ends the walk instead of recursing forever.
    const teamTree = m.hierarchy('team_tree', { table: teamMembers, child: 'member_id', parent: 'team_id' });
    const clientTree = m.hierarchy('client_tree', { table: clients, child: 'id', parent: 'owned_by' });

    // ------------------------------------------------------------------ the switchboard, as facts
    type OperatorRow = RowOf<typeof operators>;
    /** A fact that is true when the acting operator's row matches; NULL without an identity. */
    const operatorIs = (name: string, condition: (o: OperatorRow) => E, description: string) =>
      m.fact(name, scalarOf(m.from(operators, (o) => ({ where: o.id.eq(me), select: condition(o) }))), { type: 'boolean', description });

    // A NULL switch grants nothing: security NULL is on (rules 2 and 3 apply, not rule 1), strict
    // NULL is strict, locked_out NULL is locked out, apply_to_client_accounts NULL applies, and a
    // kind NULL is not an operator's (rule 3 is for kind 'operator' alone).
    const securityOn = (o: OperatorRow) => o.security.isDistinctFrom(false);
    // 1. Security off: every debtor.
    const securityOff = operatorIs('i_bypass_security', (o) => o.security.eq(false), 'Rule 1: my Security switch is off, so I see every debtor.');

    // 2. Restricted by client (any kind of operator): my client and every client it owns, at any depth.
    const myRestrictingClient = m.fact(
      'my_restricting_client_id',
      scalarOf(m.from(operators, (o) => ({ where: and(o.id.eq(me), securityOn(o)), select: o.client_id }))),
      { description: 'Rule 2: with Security on (or NULL), my Client #; NULL otherwise.' },
    );
    const myDebtorClients = m.fact('debtor_client_ids_for_me', clientTree.descendantsOf(myRestrictingClient, { includeSelf: true }), {
      description: "Rule 2: my Client # and every client it owns, at any depth (empty unless rule 2 applies).",
    });

    // 3. Restricted by account: Security on, no Client #, not a client-type operator.
    const accountRestricted = (o: OperatorRow) => and(o.id.eq(me), securityOn(o), o.client_id.isNull(), o.kind.eq('operator'));
    const iAmAccountRestricted = m.fact('i_am_account_restricted', exists(m.from(operators, (o) => ({ where: accountRestricted(o) }))), {
      description: 'Rule 3 applies to me: Security on (or NULL), no Client #, and kind operator (a client-type operator, or one of no kind, sees nothing without a Client #).',
    });
    // "Few" principals: up to 32. An operator's accounts are one collector's work list, and a team
    // is routed a share of its members' (in the benchmark's data ~100 of 10^6 accounts per
    // operator, ~40 per leaf team, none per inner team), while an operator's teams nest deep with
    // several parents: the locked-out operator at depth ten has eleven principals and ~170
    // accounts, which a bitmap reads in a millisecond where the primary-key walk filters 230,000
    // (270 ms). 32 leaves room for deeper or wider nesting. A wrong guess costs only a plan: an
    // operator whose few principals include a team routed a large share gets a bitmap of those
    // rows and a sort instead of the key walk.
    const myPrincipals = m.fact('my_principal_ids', when(iAmAccountRestricted, union(array([me]), teamTree.ancestorsOf(me))), {
      description: 'Rule 3: my operator id and every team that contains me directly or through nested teams; NULL unless rule 3 applies.',
      planHint: { few: 32 },
    });
    const iSeeOpenAccounts = m.fact('i_see_open_accounts', exists(m.from(operators, (o) => ({ where: and(accountRestricted(o), o.locked_out.eq(false)) }))), {
      description: 'Rule 3: accounts with no Clerk and no Access are mine too, unless I am locked out by default.',
    });

    // Non-strict placeholders.
    const iSeePlaceholders = operatorIs('i_see_placeholders', (o) => and(securityOn(o), o.strict.eq(false)), 'Security on and Strict off: hidden debtors appear as placeholders in the directory.');

    // Client accounts (the Clients form).
    const myClientAccountsRoot = m.fact(
      'my_client_accounts_root',
      scalarOf(m.from(operators, (o) => ({ where: and(o.id.eq(me), o.apply_to_client_accounts.isDistinctFrom(false)), select: o.client_id }))),
      { description: 'With Apply to Client Accounts: my Client # (the root of the clients I may browse and add); NULL otherwise.' },
    );
    const myClientAccounts = m.fact('client_account_ids_for_me', when(myClientAccountsRoot.isNotNull(), clientTree.descendantsOf(myClientAccountsRoot, { includeSelf: true })), {
      description: 'With Apply to Client Accounts and a Client #: that client and every client it owns; NULL otherwise.',
    });
    const iSeeEveryClient = operatorIs(
      'i_see_every_client',
      (o) => not(and(o.apply_to_client_accounts.isDistinctFrom(false), o.client_id.isNotNull())),
      'Not restricted to a client hierarchy for the Clients form: every client is visible.',
    );
    const iEditEveryClient = operatorIs(
      'i_edit_every_client',
      (o) => and(o.security.eq(false), not(and(o.apply_to_client_accounts.isDistinctFrom(false), o.client_id.isNotNull()))),
      'Security off and not restricted to a client hierarchy: I may add, change and remove any client.',
    );

    // ------------------------------------------------------------------ debtors
    type DebtorRow = RowOf<typeof debtors>;
    /** The contract's rules 1-3. Each arm is empty unless its branch of the switchboard applies. */
    const debtorVisible = (d: DebtorRow) =>
      or(
        // 1. Security off.
        m.everyRowWhen(debtors, securityOff),
        // 2. Client access: the debtor's client is my Client # or below it.
        d.client_id.in(myDebtorClients),
        // 3a. Nothing in Clerk and Access, unless I am locked out by default.
        and(d.clerk_id.isNull(), d.access_id.isNull(), m.everyRowWhen(debtors, iSeeOpenAccounts)),
        // 3b. Operator, Sales, Clerk or Access names me or a team I belong to (at any depth):
        // one GIN index over the four, and the principals computed once (four `.in` arms computed
        // them four times and read four indexes; paired, the locked-out operator's count 2.22 →
        // 1.84 ms, first page 2.80 → 2.18 ms).
        anyOf(d.operator_id, d.sales_id, d.clerk_id, d.access_id).in(myPrincipals),
      );

    m.policy(debtors, 'debtors_select', {
      for: 'select',
      description: 'Rules 1-3 in Collect! order: security off; client access over the client hierarchy; unassigned unless locked out; operator, sales, clerk or access is me or one of my teams.',
      using: debtorVisible,
    });
    m.policy(debtors, 'debtors_update', {
      for: 'update',
      description: 'The debtors I can see, and the result must stay visible to me (placeholders are never writable).',
      using: debtorVisible,
      check: debtorVisible,
    });
    m.policy(debtors, 'debtors_insert', { for: 'insert', description: 'Only debtors I would be able to see.', check: debtorVisible });
    m.policy(debtors, 'debtors_delete', { for: 'delete', description: 'The debtors I can see.', using: debtorVisible });

    m.maskedView('debtor_directory', {
      table: debtors,
      keep: ['id', 'file_number', 'last_worked', 'operator_id', 'owing', 'group_number', 'group_member_number'],
      masks: { name: 'N/A' },
      flagColumn: 'restricted',
      showMaskedWhen: iSeePlaceholders,
      description:
        'Every debtor I see (restricted = false); with Security on and Strict off also every other debtor as a placeholder (restricted = true): routing columns only, name N/A. Read-only.',
    });

    // ------------------------------------------------------------------ clients
    m.policy(clients, 'clients_select', {
      for: 'select',
      description: 'With Apply to Client Accounts and a Client #: that client hierarchy only. Otherwise every client.',
      // The flag is OR'd as it is, not as m.everyRowWhen: clients is a small lookup table, and a
      // primary-key range arm makes the planner expect ~1% of clients for the common "every
      // client" case, which turned joins from debtors into nested loops (5.8 s in the benchmark).
      using: (c) => or(c.id.in(myClientAccounts), iSeeEveryClient),
    });
    m.policy(clients, 'clients_insert', {
      for: 'insert',
      description: 'Restricted to a client hierarchy: only below my Client # (owned_by defaults to it). Security off and unrestricted: anywhere.',
      check: (c) => or(c.owned_by.in(myClientAccounts), m.everyRowWhen(clients, iEditEveryClient)),
    });
    m.policy(clients, 'clients_update', {
      for: 'update',
      description: 'Restricted: clients of my hierarchy, which must stay in it. Security off and unrestricted: any client.',
      using: (c) => or(c.id.in(myClientAccounts), m.everyRowWhen(clients, iEditEveryClient)),
      check: (c) => or(c.id.eq(myClientAccountsRoot), c.owned_by.in(myClientAccounts), m.everyRowWhen(clients, iEditEveryClient)),
    });
    m.policy(clients, 'clients_delete', {
      for: 'delete',
      description: 'Restricted: clients below my Client # (not the root itself). Security off and unrestricted: any client.',
      using: (c) => or(c.owned_by.in(myClientAccounts), m.everyRowWhen(clients, iEditEveryClient)),
    });
    m.onWrite(clients, 'clients_owned_by_default', {
      events: ['insert'],
      description: 'A client added by an operator restricted to a client hierarchy is owned by their Client # unless another owner is given.',
      when: (_old, row) => row.owned_by.isNull(),
      set: () => ({ owned_by: myClientAccountsRoot }),
    });
    m.guardColumns(clients, 'clients_root_stays_put', {
      columns: ['owned_by'],
      when: (old) => old.id.eq(myClientAccountsRoot),
      message: 'the root of your client hierarchy cannot be moved; ask an operator without client restrictions',
    });

    // ------------------------------------------------------------------ operators, teams, membership
    // The contract is silent on these. Any identified operator reads them (routing a call needs the
    // operator and team lists; reporting tools read the team closure). Only operators with Security
    // off — Collect!'s administrators, who see everything anyway — change them: otherwise a
    // restricted operator could switch off their own Security or join a team.
    for (const [table, what] of [
      [operators, 'operators'],
      [teams, 'teams'],
    ] as const) {
      m.policy(table, `${what}_select`, { for: 'select', description: 'Every identified operator.', using: () => me.isNotNull() });
      m.policy(table, `${what}_insert`, { for: 'insert', description: 'Operators with Security off.', check: () => m.everyRowWhen(table, securityOff) });
      m.policy(table, `${what}_update`, {
        for: 'update',
        description: 'Operators with Security off.',
        using: () => m.everyRowWhen(table, securityOff),
        check: () => m.everyRowWhen(table, securityOff),
      });
      m.policy(table, `${what}_delete`, { for: 'delete', description: 'Operators with Security off.', using: () => m.everyRowWhen(table, securityOff) });
    }
    m.policy(teamMembers, 'team_members_select', { for: 'select', description: 'Every identified operator.', using: () => me.isNotNull() });
    m.policy(teamMembers, 'team_members_insert', {
      for: 'insert',
      description: 'Operators with Security off.',
      check: () => m.everyRowWhen(teamMembers, securityOff),
    });
    m.policy(teamMembers, 'team_members_delete', {
      for: 'delete',
      description: 'Operators with Security off.',
      using: () => m.everyRowWhen(teamMembers, securityOff),
    });

    m.reportingView('debtors_report', {
      table: debtors,
      description: 'For BI tools: the debtors the caller may see, with their client and the client above it.',
      columns: (d) => ({
        id: d.id,
        file_number: d.file_number,
        name: d.name,
        owing: d.owing,
        last_worked: d.last_worked,
        operator_id: d.operator_id,
        client_id: d.client_id,
        client_name: scalarOf(m.from(clients, (c) => ({ where: c.id.eq(d.client_id), select: c.name }))),
        parent_client_name: scalarOf(m.from(clients, (c) => ({ where: c.id.eq(scalarOf(m.from(clients, (x) => ({ where: x.id.eq(d.client_id), select: x.owned_by })))), select: c.name }))),
      }),
    });
  },
  { description: 'Collect!: account access control with nested teams, a client hierarchy, and strict and non-strict operators' },
);
