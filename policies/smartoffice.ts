// SmartOffice (seeds 000 and 002): office security, assignments, proxies, private contacts,
// enterprise users over the office hierarchy, and cross-office record sharing.
// The contract is ../shared/reference-models.md, section "smartoffice".
import { and, array, arrayOf, defineModel, exists, lit, not, or, scalarOf, t, union, when, type E, type RowOf } from '../generator/dsl/index.ts';

export default defineModel(
  'smartoffice',
  (m) => {
    // ------------------------------------------------------------------ tables
    const offices = m.table('offices', {
      id: t.bigint().primaryKey(),
      parent_id: t.bigint().references('offices'),
      name: t.text(),
      office_security: t.boolean().notNull().default(true),
    });
    const users = m.table(
      'users',
      {
        id: t.bigint().primaryKey(),
        office_id: t.bigint().notNull().references(offices),
        name: t.text(),
        is_admin: t.boolean().default(false),
        enterprise_view: t.boolean().default(false),
        super_user: t.boolean().default(false),
        record_sharing: t.boolean().default(false),
      },
      {
        // Seed 002: record sharing and the Super User / Enterprise View rights exclude each other.
        checks: {
          users_record_sharing_exclusive: (u) => not(and(u.record_sharing.isTrue(), or(u.super_user.isTrue(), u.enterprise_view.isTrue()))),
        },
      },
    );
    const contacts = m.table('contacts', {
      id: t.bigint().primaryKey(),
      office_id: t.bigint().notNull().references(offices),
      name: t.text(),
      phone: t.text(),
      is_private: t.boolean().default(false),
      private_owner_id: t.bigint().references(users),
    });
    const contactAssignments = m.table(
      'contact_assignments',
      { contact_id: t.bigint().notNull().references(contacts), user_id: t.bigint().notNull().references(users) },
      { primaryKey: ['contact_id', 'user_id'] },
    );
    const proxies = m.table(
      'proxies',
      { proxy_id: t.bigint().notNull().references(users), agent_id: t.bigint().notNull().references(users) },
      { primaryKey: ['proxy_id', 'agent_id'] },
    );
    const privateProxies = m.table(
      'private_proxies',
      { owner_id: t.bigint().notNull().references(users), proxy_id: t.bigint().notNull().references(users) },
      { primaryKey: ['owner_id', 'proxy_id'] },
    );
    const userLinks = m.table('user_links', {
      id: t.bigint().primaryKey(),
      sharer_id: t.bigint().notNull().references(users),
      receiver_id: t.bigint().notNull().references(users),
      status: t.text().notNull().default('waiting').oneOf(['waiting', 'active']),
    });
    const sharedContacts = m.table(
      'shared_contacts',
      {
        link_id: t.bigint().notNull().references(userLinks, { onDelete: 'cascade' }),
        contact_id: t.bigint().notNull().references(contacts),
      },
      { primaryKey: ['link_id', 'contact_id'] },
    );

    // "Assigned to nobody" (rule 2) as a column kept current by triggers on contact_assignments,
    // so the policy reads `assignment_count = 0` through a partial index instead of running an
    // anti-join over the office's contacts on every statement.
    const assignmentCount = m.counter(contacts, 'assignment_count', {
      from: contactAssignments,
      key: 'contact_id',
      description: 'How many users the contact is assigned to; 0 means "all users" of its office.',
    });
    m.index(contacts, { columns: ['office_id'], where: (c) => assignmentCount.of(c).eq(0), name: 'contacts_unassigned_idx' });

    m.identity(users);
    const me = m.me;
    const officeTree = m.hierarchy('office_tree', { table: offices, child: 'id', parent: 'parent_id' });

    // ------------------------------------------------------------------ facts about the acting user
    const myOffice = m.fact('my_office_id', scalarOf(m.from(users, (u) => ({ where: u.id.eq(me), select: u.office_id }))), {
      description: "The acting user's office.",
    });
    const myFlag = (name: string, flag: 'is_admin' | 'enterprise_view' | 'record_sharing') =>
      m.fact(name, scalarOf(m.from(users, (u) => ({ where: u.id.eq(me), select: u[flag].isTrue() }))), { type: 'boolean' });
    const iAmAdmin = myFlag('i_am_admin', 'is_admin');
    const iHaveEnterpriseView = myFlag('i_have_enterprise_view', 'enterprise_view');
    const iShareRecords = myFlag('i_share_records', 'record_sharing');

    /**
     * "C is private" unless is_private is false: a NULL flag counts as private (rule 1: its owner
     * and the proxies they enabled), never as public (rules 2-4), so a contact whose flag is
     * unknown is not shown to the office. Every contact is in exactly one of the two.
     */
    const isPrivate = (c: { is_private: E }) => c.is_private.isDistinctFrom(false);
    const notPrivate = (c: { is_private: E }) => c.is_private.eq(false);

    const openOffice = m.fact(
      'my_open_office_id',
      when(exists(m.from(offices, (o) => ({ where: and(o.id.eq(myOffice), o.office_security.eq(false)) }))), myOffice),
      { description: 'My office when its office security is off (every user of the office sees all its contacts), else NULL.' },
    );
    const actingFor = m.fact(
      'acting_for_ids',
      union(array([me]), arrayOf(m.from(proxies, (p) => ({ where: p.proxy_id.eq(me), select: p.agent_id })))),
      { description: 'Me and every agent I am a proxy for.' },
    );
    // Rule 2's "my office and assigned to me or my agents" as one condition on one GIN index:
    // each contact lists a key of (its office, the user) per assignment, kept by triggers, and
    // the fact below holds my keys (my office with me and each agent I stand in for). As two conditions (office_id = my office AND id = any(assigned)) the arm needs an index
    // on both columns to be answered by its bitmap scan alone; where offices are small PostgreSQL
    // took the office_id index instead and re-checked the whole policy on every row it returned
    // (4.3 s for a count of 98,000 contacts under 11,111 offices). As one set of ids (migrations
    // 0043-0183) it cost a read of my assignments and a probe of the id index per contact.
    const assignees = m.keyList(contacts, 'assignee_keys', {
      from: contactAssignments,
      key: 'contact_id',
      value: 'user_id',
      scope: 'office_id',
      description: 'One key per user the contact is assigned to, with the contact\'s office: rule 2 reads it through one GIN index.',
    });
    // Only a user whom office security limits needs it: for the others rule 2's open office or
    // rule 3 admits every contact of the office it could add. For them it is NULL, never
    // computed, and set_session's mark folds its arm.
    const limitedByOfficeSecurity = m.fact('office_security_limits_me', and(openOffice.isNull(), iHaveEnterpriseView.isNotTrue()), {
      type: 'boolean',
      description: 'My office keeps office security and I have no enterprise view: of its contacts I see those assigned to me, my agents or nobody.',
    });
    // Few up to 100 keys: the planner cannot see the fact and estimates `&&` at 1% of the table
    // (without the hint the agent's first page walked the key: 80 ms), but every key is of my
    // office, so the arm never admits more than my office's contacts, however many agents I
    // stand in for.
    const myAssigneeKeys = m.fact('my_office_assignee_keys', when(limitedByOfficeSecurity, assignees.keysOf(myOffice, actingFor)), {
      planHint: { few: 100 },
      description:
        'If office security limits me: the assignee keys of my office for me and each agent I am a proxy for (rule 2: a contact of my office assigned to one of us lists one of them). Otherwise NULL.',
    });
    const enterpriseOffices = m.fact('enterprise_office_ids', when(iHaveEnterpriseView, officeTree.descendantsOf(myOffice, { includeSelf: true })), {
      description: 'With enterprise view: my office and every office below it, at any depth. Otherwise NULL.',
    });
    const privateOwners = m.fact(
      'private_owner_ids_visible_to_me',
      union(
        array([me]),
        arrayOf(
          m.from(proxies, (p) => ({
            where: and(p.proxy_id.eq(me), exists(m.from(privateProxies, (pp) => ({ where: and(pp.owner_id.eq(p.agent_id), pp.proxy_id.eq(me)) })))),
            select: p.agent_id,
          })),
        ),
      ),
      { description: 'Owners whose private contacts I may see: me, and agents I proxy for who enabled me.' },
    );
    const sharedWithMe = m.fact(
      'contacts_shared_with_me',
      arrayOf(
        m.from(sharedContacts, (s) => ({
          where: exists(m.from(userLinks, (l) => ({ where: and(l.id.eq(s.link_id), l.receiver_id.eq(me), l.status.eq('active')) }))),
          select: s.contact_id,
          distinct: true,
        })),
      ),
    );
    const adminOfficeUsers = m.fact('users_i_administer', when(iAmAdmin, arrayOf(m.from(users, (u) => ({ where: u.office_id.eq(myOffice), select: u.id })))), {
      description: 'As an office administrator: the users of my office. Otherwise NULL.',
    });
    const adminOffice = m.fact('office_i_administer', when(iAmAdmin, myOffice));
    const myLinks = m.fact('my_link_ids', arrayOf(m.from(userLinks, (l) => ({ where: or(l.sharer_id.eq(me), l.receiver_id.eq(me)), select: l.id }))));
    const linksIShare = m.fact('link_ids_i_share', arrayOf(m.from(userLinks, (l) => ({ where: l.sharer_id.eq(me), select: l.id }))));
    const activeLinksIShare = m.fact(
      'active_link_ids_i_share',
      arrayOf(m.from(userLinks, (l) => ({ where: and(l.sharer_id.eq(me), l.status.eq('active')), select: l.id }))),
    );
    const linkPartners = m.fact(
      'my_link_partner_ids',
      union(
        arrayOf(m.from(userLinks, (l) => ({ where: l.sharer_id.eq(me), select: l.receiver_id }))),
        arrayOf(m.from(userLinks, (l) => ({ where: l.receiver_id.eq(me), select: l.sharer_id }))),
      ),
    );
    const receiversForMe = m.fact(
      'record_sharing_receiver_ids',
      when(iShareRecords, arrayOf(m.from(users, (u) => ({ where: and(u.record_sharing.isTrue(), u.office_id.ne(myOffice)), select: u.id })))),
      { description: 'If I share records: users of other offices who also share records. Otherwise NULL.' },
    );
    const contactsAssignedToMe = m.fact('contacts_assigned_to_me', arrayOf(m.from(contactAssignments, (a) => ({ where: a.user_id.eq(me), select: a.contact_id }))));

    // ------------------------------------------------------------------ contacts
    type ContactRow = RowOf<typeof contacts>;
    /**
     * Rules 1-3 of the contract: what a user may see and also change. A new row version (WITH
     * CHECK) is judged by where it is going: its office_id, and its assignee keys, which the key
     * list's trigger rewrites for the new office before the check.
     */
    const byRules = (c: ContactRow) =>
      or(
        // 1. private: the owner, or a proxy of the owner whom the owner enabled.
        and(isPrivate(c), c.private_owner_id.in(privateOwners)),
        // 2. not private, my office: security off, or assigned to me or my agents, or to nobody.
        and(notPrivate(c), c.office_id.eq(openOffice)),
        and(notPrivate(c), assignees.of(c).in(myAssigneeKeys)),
        and(notPrivate(c), c.office_id.eq(myOffice), assignmentCount.of(c).eq(0)),
        // 3. enterprise view: my office and every office below it.
        and(notPrivate(c), c.office_id.in(enterpriseOffices)),
      );

    m.policy(contacts, 'contacts_select', {
      for: 'select',
      description: 'Rules 1-4: private owner and enabled proxies; office security; enterprise view; active record shares.',
      using: (c) => or(byRules(c), and(notPrivate(c), c.id.in(sharedWithMe))),
    });
    m.policy(contacts, 'contacts_update', {
      for: 'update',
      description: 'Rules 1-3 (shared contacts are read-only), before and after the change.',
      using: byRules,
      check: byRules,
    });
    m.policy(contacts, 'contacts_delete', { for: 'delete', description: 'Rules 1-3.', using: byRules });
    m.policy(contacts, 'contacts_insert', {
      for: 'insert',
      description: 'Into my own office, or with enterprise view into an office below it.',
      check: (c) => or(c.office_id.eq(myOffice), c.office_id.in(enterpriseOffices)),
    });
    // A contact moves only where it could be added: an UPDATE that changes office_id must take it
    // to my own office or, with enterprise view, to one below it. Rule 1 lets the owner of a
    // private contact change it in any office, but not carry it into another company's tree. A
    // session without an identity (the owner's maintenance) is not held by it.
    m.guardColumns(contacts, 'contacts_move_where_insertable', {
      columns: ['office_id'],
      when: (_old, row) => and(me.isNotNull(), or(row.office_id.eq(myOffice), row.office_id.in(enterpriseOffices)).isNotTrue()),
      message: 'a contact may move only into my own office or, with enterprise view, into an office below it',
    });

    // ------------------------------------------------------------------ assignments
    const visibleContactInMyOffices = (contactId: E) =>
      exists(m.from(contacts, (c) => ({ where: and(c.id.eq(contactId), or(c.office_id.eq(myOffice), c.office_id.in(enterpriseOffices))) })));
    m.policy(contactAssignments, 'contact_assignments_select', {
      for: 'select',
      description: 'Assignments of the contacts I can see (the EXISTS runs under the contacts policies).',
      using: (a) => exists(m.from(contacts, (c) => ({ where: c.id.eq(a.contact_id) }))),
    });
    m.policy(contactAssignments, 'contact_assignments_insert', {
      for: 'insert',
      description: 'Assign contacts I can see in my office (or an enterprise office below it).',
      check: (a) => visibleContactInMyOffices(a.contact_id),
    });
    m.policy(contactAssignments, 'contact_assignments_delete', {
      for: 'delete',
      description: 'Unassign contacts I can see in my office (or an enterprise office below it).',
      using: (a) => visibleContactInMyOffices(a.contact_id),
    });

    // ------------------------------------------------------------------ proxies
    m.policy(proxies, 'proxies_select', {
      for: 'select',
      description: 'Rows where I am proxy or agent; an administrator sees every row of the office.',
      using: (p) => or(p.proxy_id.eq(me), p.agent_id.eq(me), p.agent_id.in(adminOfficeUsers)),
    });
    m.policy(proxies, 'proxies_insert', {
      for: 'insert',
      description: "Only an administrator of the agent's office grants proxies.",
      check: (p) => p.agent_id.in(adminOfficeUsers),
    });
    m.policy(proxies, 'proxies_delete', {
      for: 'delete',
      description: "Only an administrator of the agent's office removes proxies.",
      using: (p) => p.agent_id.in(adminOfficeUsers),
    });

    // ------------------------------------------------------------------ private proxies
    m.policy(privateProxies, 'private_proxies_select', { for: 'select', using: (pp) => or(pp.owner_id.eq(me), pp.proxy_id.eq(me)) });
    m.policy(privateProxies, 'private_proxies_insert', { for: 'insert', description: 'Owners enable proxies for their own private contacts.', check: (pp) => pp.owner_id.eq(me) });
    m.policy(privateProxies, 'private_proxies_delete', { for: 'delete', using: (pp) => pp.owner_id.eq(me) });

    // ------------------------------------------------------------------ offices and users
    m.policy(offices, 'offices_select', { for: 'select', description: 'Any identified user sees the office list.', using: () => me.isNotNull() });
    m.policy(offices, 'offices_update', {
      for: 'update',
      description: 'Administrators change their own office.',
      using: (o) => o.id.eq(adminOffice),
      check: (o) => o.id.eq(adminOffice),
    });
    m.policy(users, 'users_select', {
      for: 'select',
      description: 'Myself, my office, offices below mine with enterprise view, and my record-sharing partners.',
      using: (u) => or(u.id.eq(me), u.office_id.eq(myOffice), u.office_id.in(enterpriseOffices), u.id.in(linkPartners)),
    });
    m.policy(users, 'users_insert', { for: 'insert', description: 'Administrators add users to their office.', check: (u) => u.office_id.eq(adminOffice) });
    m.policy(users, 'users_update', {
      for: 'update',
      description: 'Administrators change users of their office.',
      using: (u) => u.office_id.eq(adminOffice),
      check: (u) => u.office_id.eq(adminOffice),
    });
    m.onWrite(users, 'users_record_sharing_enabled', {
      events: ['insert', 'update'],
      description: 'Enabling record sharing turns Super User and Enterprise View off and office security on (seed 002).',
      when: (old, row) => and(row.record_sharing.isTrue(), old.record_sharing.isNotTrue()),
      set: () => ({ super_user: false, enterprise_view: false }),
      alsoUpdate: { table: offices, set: () => ({ office_security: true }), where: (o, _old, row) => o.id.eq(row.office_id) },
    });

    // ------------------------------------------------------------------ record sharing
    m.policy(userLinks, 'user_links_select', { for: 'select', description: 'Only the two parties see a link.', using: (l) => or(l.sharer_id.eq(me), l.receiver_id.eq(me)) });
    m.policy(userLinks, 'user_links_insert', {
      for: 'insert',
      description: 'A record-sharing user requests a link, as sharer, waiting, to a record-sharing user of another office.',
      check: (l) => and(l.sharer_id.eq(me), l.status.eq('waiting'), l.receiver_id.in(receiversForMe)),
    });
    m.policy(userLinks, 'user_links_update', {
      for: 'update',
      description: 'Only the receiver changes the status (accepts the link).',
      using: (l) => l.receiver_id.eq(me),
      check: (l) => l.receiver_id.eq(me),
    });
    m.guardColumns(userLinks, 'user_links_parties_fixed', {
      columns: ['sharer_id', 'receiver_id'],
      when: () => lit(true),
      message: 'the parties of a user link cannot change; delete the link and request a new one',
    });
    m.policy(userLinks, 'user_links_delete', {
      for: 'delete',
      description: "Either party deletes the link; its shares go with it (ON DELETE CASCADE).",
      using: (l) => or(l.sharer_id.eq(me), l.receiver_id.eq(me)),
    });
    m.policy(sharedContacts, 'shared_contacts_select', { for: 'select', description: 'Both parties of the link.', using: (s) => s.link_id.in(myLinks) });
    m.policy(sharedContacts, 'shared_contacts_insert', {
      for: 'insert',
      description: 'The sharer of an active link shares contacts assigned to them.',
      check: (s) => and(s.link_id.in(activeLinksIShare), s.contact_id.in(contactsAssignedToMe)),
    });
    m.reportingView('contacts_report', {
      table: contacts,
      description: 'For BI tools: the contacts the caller may see, with office and assignees.',
      columns: (c) => ({
        id: c.id,
        name: c.name,
        phone: c.phone,
        is_private: c.is_private,
        office_id: c.office_id,
        office_name: scalarOf(m.from(offices, (o) => ({ where: o.id.eq(c.office_id), select: o.name }))),
        parent_office_name: scalarOf(m.from(offices, (o) => ({ where: o.id.eq(scalarOf(m.from(offices, (x) => ({ where: x.id.eq(c.office_id), select: x.parent_id })))), select: o.name }))),
        assignees: arrayOf(m.from(users, (u) => ({ where: exists(m.from(contactAssignments, (a) => ({ where: and(a.contact_id.eq(c.id), a.user_id.eq(u.id)) }))), select: u.name }))),
      }),
    });
    m.policy(sharedContacts, 'shared_contacts_delete', { for: 'delete', description: 'The sharer stops sharing.', using: (s) => s.link_id.in(linksIShare) });
  },
  { description: 'SmartOffice: office, proxy, private and enterprise security with record sharing' },
);
