// The SmartOffice contract, rule by rule, as app_user with smartoffice.set_session.
import { describe, expect, it } from 'vitest';
import { smartofficeSample } from '../../generator/cli/samples/smartoffice.ts';
import { asOwner, ids, rolledBack, sqlState, useTestDatabase } from '../support/db.ts';

const db = useTestDatabase(async (admin) => {
  await admin.unsafe(smartofficeSample.sql);
});
const S = 'smartoffice';
const contactIds = 'SELECT id FROM smartoffice.contacts ORDER BY id';
const as = <T>(user: number | null, fn: Parameters<typeof db.current.as<T>>[2]) => db.current.as(S, user, fn);

describe('smartoffice: who sees which contact', () => {
  for (const persona of smartofficeSample.personas) {
    it(`${persona.name} (user ${persona.id}) sees exactly ${JSON.stringify(persona.sees)}`, async () => {
      expect(await as(persona.id as number, (tx) => ids(tx, contactIds))).toEqual([...persona.sees]);
    });
  }

  it('rule 1: a private contact is hidden from enterprise view, office security off and sharing', async () => {
    // Carla has enterprise view over Branch A; 104 and 105 are private there.
    expect(await as(10, (tx) => ids(tx, 'SELECT id FROM smartoffice.contacts WHERE is_private'))).toEqual([]);
    await db.current.admin.begin(async (tx) => {
      await tx`UPDATE smartoffice.offices SET office_security = false WHERE id = 3`;
      await tx`INSERT INTO smartoffice.shared_contacts VALUES (50, 104)`;
      await tx.unsafe('SET LOCAL ROLE app_user');
      await tx`SELECT smartoffice.set_session(14)`;
      expect(await ids(tx as never, 'SELECT id FROM smartoffice.contacts WHERE is_private')).toEqual([]);
      await tx`SELECT smartoffice.set_session(17)`;
      expect(await ids(tx as never, 'SELECT id FROM smartoffice.contacts WHERE is_private')).toEqual([]);
      await tx`SELECT smartoffice.set_session(12)`;
      // Tom sees all of Branch A with security off, but of the private ones only his own.
      expect(await ids(tx as never, contactIds)).toEqual([100, 101, 102, 103, 105]);
      throw new RollbackSignal();
    }).catch(ignoreRollback);
  });

  it('a contact whose is_private is NULL counts as private: its owner and the proxies they enabled see it, and no rule of the office or enterprise view or sharing shows it', async () => {
    // 150 in Branch A (office 3), owned by John (11), unassigned and shared with Sam (17) on an active link.
    const seenBy = async (flag: string) => {
      const seen: number[] = [];
      for (const { id } of smartofficeSample.personas) {
        const rows = await as(id as number, async (tx) => {
          await asOwner(tx, async () => {
            await tx.unsafe(`INSERT INTO smartoffice.contacts (id, office_id, name, is_private, private_owner_id) VALUES (150, 3, 'x', ${flag}, 11)`);
            await tx.unsafe('INSERT INTO smartoffice.shared_contacts VALUES (50, 150)');
          });
          return ids(tx, 'SELECT id FROM smartoffice.contacts WHERE id = 150');
        });
        if (rows.length > 0) seen.push(id as number);
      }
      return seen;
    };
    expect(await seenBy('true')).toEqual([11, 13]); // John, and the proxy he enabled
    expect(await seenBy('NULL')).toEqual([11, 13]);
    // The same contact, public, is seen by the office, enterprise view and the share.
    expect((await seenBy('false')).length).toBeGreaterThan(2);
  });

  it('rule 1: a proxy needs both the proxy row and the owner\'s enablement', async () => {
    await as(13, async (tx) => {
      expect(await ids(tx, 'SELECT id FROM smartoffice.contacts WHERE is_private')).toEqual([104]);
      // Tom enables Ann: the next statement shows his private contact too.
      await tx`SELECT smartoffice.set_session(12)`;
      await tx`INSERT INTO smartoffice.private_proxies (owner_id, proxy_id) VALUES (12, 13)`;
      await tx`SELECT smartoffice.set_session(13)`;
      expect(await ids(tx, 'SELECT id FROM smartoffice.contacts WHERE is_private')).toEqual([104, 105]);
    });
    // Ada was enabled by Tom but is not his proxy: nothing private.
    expect(await as(14, (tx) => ids(tx, 'SELECT id FROM smartoffice.contacts WHERE is_private'))).toEqual([]);
  });

  it('rule 2: with office security off every user of the office sees all its (non-private) contacts', async () => {
    expect(await as(20, (tx) => ids(tx, contactIds))).toEqual([106, 107]);
  });

  it('rule 3: enterprise view reaches offices at depth 3 and never upwards or sideways', async () => {
    expect(await as(10, (tx) => ids(tx, 'SELECT id FROM smartoffice.contacts WHERE office_id = 5'))).toEqual([108]);
    expect(await as(18, (tx) => ids(tx, 'SELECT id FROM smartoffice.contacts WHERE office_id IN (1, 6)'))).toEqual([]);
  });

  it('rule 4: only active links share; the receiver accepting shows the contact in the next statement', async () => {
    await as(21, async (tx) => {
      expect(await ids(tx, contactIds)).toEqual([]);
      expect((await tx`UPDATE smartoffice.user_links SET status = 'active' WHERE id = 51`).count).toBe(1);
      expect(await ids(tx, contactIds)).toEqual([111]);
    });
  });

  it('a change to proxies takes effect in the next statement of the same transaction', async () => {
    await as(13, async (tx) => {
      expect(await ids(tx, contactIds)).toEqual([100, 101, 102, 103, 104]);
      await tx`SELECT smartoffice.set_session(14)`; // Ada, administrator of Branch A
      expect((await tx`DELETE FROM smartoffice.proxies WHERE proxy_id = 13 AND agent_id = 11`).count).toBe(1);
      await tx`SELECT smartoffice.set_session(13)`;
      expect(await ids(tx, contactIds)).toEqual([101, 102, 103]);
    });
  });

  it('a change to assignments takes effect in the next statement ("all users" ends when assigned)', async () => {
    await as(11, async (tx) => {
      expect((await tx`INSERT INTO smartoffice.contact_assignments VALUES (103, 11)`).count).toBe(1);
      await tx`SELECT smartoffice.set_session(12)`;
      expect(await ids(tx, contactIds)).toEqual([101, 102, 105]);
    });
  });
});

describe('smartoffice: no identity, no rows', () => {
  const tables = ['offices', 'users', 'contacts', 'contact_assignments', 'proxies', 'private_proxies', 'user_links', 'shared_contacts'];
  for (const table of tables) {
    it(`${table}: app_user without set_session reads nothing`, async () => {
      expect(await as(null, async (tx) => (await tx.unsafe(`SELECT count(*)::int AS n FROM smartoffice.${table}`))[0]!.n)).toBe(0);
    });
  }
  it('writes without an identity are refused or touch nothing', async () => {
    expect(await sqlState(as(null, (tx) => tx`INSERT INTO smartoffice.contacts (id, office_id, name) VALUES (900, 3, 'x')`))).toBe('42501');
    expect(await as(null, async (tx) => (await tx`UPDATE smartoffice.contacts SET name = 'x'`).count)).toBe(0);
    expect(await as(null, async (tx) => (await tx`DELETE FROM smartoffice.contacts`).count)).toBe(0);
  });
});

describe('smartoffice: set_session', () => {
  it('refuses an unknown user id', async () => {
    expect(await sqlState(as(999, async () => undefined))).toBe('28000');
  });
  it('refuses NULL', async () => {
    expect(await sqlState(as(null, (tx) => tx`SELECT smartoffice.set_session(NULL)`))).toBe('22004');
  });
  it('refuses a superuser (who would bypass every policy)', async () => {
    const state = await sqlState(db.current.admin.begin((tx) => tx`SELECT smartoffice.set_session(11)`));
    expect(state).toBe('42501');
  });
  it('the identity ends with the transaction, on the same connection', async () => {
    const conn = await db.current.admin.reserve();
    try {
      await conn`BEGIN`;
      await conn`SET LOCAL ROLE app_user`;
      await conn`SELECT smartoffice.set_session(11)`;
      expect((await conn`SELECT count(*)::int AS n FROM smartoffice.contacts`)[0]!.n).toBe(4);
      await conn`COMMIT`;
      await conn`BEGIN`;
      await conn`SET LOCAL ROLE app_user`;
      // The setting now reads as '' on this connection: still no identity.
      expect((await conn`SELECT current_setting('rowguard.smartoffice_user_id', true) AS v`)[0]!.v).toBe('');
      expect((await conn`SELECT count(*)::int AS n FROM smartoffice.contacts`)[0]!.n).toBe(0);
      await conn`ROLLBACK`;
    } finally {
      conn.release();
    }
  });
  it('an identity set with set_config instead of set_session is not an identity', async () => {
    const n = await as(null, async (tx) => {
      await tx`SELECT set_config('rowguard.smartoffice_user_id', '11', true)`;
      return (await tx`SELECT count(*)::int AS n FROM smartoffice.contacts`)[0]!.n;
    });
    expect(n).toBe(0);
  });
});

describe('smartoffice: writes', () => {
  it('contacts: update and delete what rules 1-3 show, nothing else', async () => {
    await as(11, async (tx) => {
      expect((await tx`UPDATE smartoffice.contacts SET phone = 'x' WHERE id IN (100, 104)`).count).toBe(2);
      expect((await tx`UPDATE smartoffice.contacts SET phone = 'x' WHERE id = 101`).count).toBe(0);
      expect((await tx`DELETE FROM smartoffice.contacts WHERE id = 101`).count).toBe(0);
    });
    // Shared contacts are read-only for the receiver.
    await as(17, async (tx) => {
      expect(await ids(tx, 'SELECT id FROM smartoffice.contacts WHERE id = 110')).toEqual([110]);
      expect((await tx`UPDATE smartoffice.contacts SET phone = 'x' WHERE id = 110`).count).toBe(0);
      expect((await tx`DELETE FROM smartoffice.contacts WHERE id = 110`).count).toBe(0);
    });
    // Enterprise view writes over the subtree.
    expect(await as(10, async (tx) => (await tx`UPDATE smartoffice.contacts SET phone = 'x' WHERE id = 108`).count)).toBe(1);
  });
  it('contacts: an update may not move a contact out of what the user may see', async () => {
    expect(await sqlState(as(11, (tx) => tx`UPDATE smartoffice.contacts SET office_id = 6 WHERE id = 100`))).toBe('42501');
  });
  it('contacts: a contact moves only where it could be inserted, a private one too; an enterprise user moves within the subtree; the owner without an identity anywhere', async () => {
    // Rule 1 admits John's private contact in any office, but he may not carry it (or a contact he
    // makes private on the way) into another company's office, nor out of every office.
    expect(await sqlState(as(11, (tx) => tx`UPDATE smartoffice.contacts SET office_id = 6 WHERE id = 104`))).toBe('42501');
    expect(await sqlState(as(11, (tx) => tx`UPDATE smartoffice.contacts SET is_private = true, private_owner_id = 11, office_id = 6 WHERE id = 103`))).toBe('42501');
    expect(await sqlState(as(11, (tx) => tx`UPDATE smartoffice.contacts SET office_id = NULL WHERE id = 104`))).toBe('42501');
    // Within what he may insert into, and any change that keeps the office, as before.
    expect(await as(11, async (tx) => (await tx`UPDATE smartoffice.contacts SET office_id = 3, phone = 'x' WHERE id = 104`).count)).toBe(1);
    // Carla (enterprise view from HQ): from Branch A (3) to the Field office (5), below HQ too.
    expect(await as(10, async (tx) => (await tx`UPDATE smartoffice.contacts SET office_id = 5 WHERE id = 100`).count)).toBe(1);
    expect(await sqlState(as(10, (tx) => tx`UPDATE smartoffice.contacts SET office_id = 6 WHERE id = 100`))).toBe('42501');
    await rolledBack(db.current.admin, async (tx) => {
      expect((await tx`UPDATE smartoffice.contacts SET office_id = 6 WHERE id = 104`).count).toBe(1);
    });
  });
  it('contacts: insert into your own office, or with enterprise view into an office below it', async () => {
    expect(await as(11, async (tx) => (await tx`INSERT INTO smartoffice.contacts (id, office_id, name) VALUES (900, 3, 'new')`).count)).toBe(1);
    expect(await sqlState(as(11, (tx) => tx`INSERT INTO smartoffice.contacts (id, office_id, name) VALUES (900, 4, 'new')`))).toBe('42501');
    expect(await as(10, async (tx) => (await tx`INSERT INTO smartoffice.contacts (id, office_id, name) VALUES (900, 5, 'new')`).count)).toBe(1);
    expect(await sqlState(as(18, (tx) => tx`INSERT INTO smartoffice.contacts (id, office_id, name) VALUES (900, 1, 'new')`))).toBe('42501');
  });
  it('proxies: only an administrator of the agent\'s office inserts or deletes', async () => {
    expect(await as(14, async (tx) => (await tx`INSERT INTO smartoffice.proxies VALUES (12, 11)`).count)).toBe(1);
    expect(await sqlState(as(11, (tx) => tx`INSERT INTO smartoffice.proxies VALUES (11, 12)`))).toBe('42501');
    expect(await sqlState(as(14, (tx) => tx`INSERT INTO smartoffice.proxies VALUES (14, 15)`))).toBe('42501');
    expect(await as(11, async (tx) => (await tx`DELETE FROM smartoffice.proxies`).count)).toBe(0);
    expect(await as(14, async (tx) => (await tx`DELETE FROM smartoffice.proxies WHERE agent_id = 11`).count)).toBe(1);
  });
  it('proxies: users see rows where they are proxy or agent; administrators see the office', async () => {
    const rows = (user: number) => as(user, async (tx) => (await tx`SELECT proxy_id, agent_id FROM smartoffice.proxies ORDER BY 1, 2`).map((r) => `${r.proxy_id}->${r.agent_id}`));
    expect(await rows(11)).toEqual(['13->11']);
    expect(await rows(13)).toEqual(['13->11', '13->12']);
    expect(await rows(14)).toEqual(['13->11', '13->12']);
    expect(await rows(15)).toEqual([]);
  });
  it('user_links: a record-sharing user requests a waiting link to a record-sharing user of another office', async () => {
    expect(await as(16, async (tx) => (await tx`INSERT INTO smartoffice.user_links (id, sharer_id, receiver_id) VALUES (60, 16, 17)`).count)).toBe(1);
    expect(await sqlState(as(16, (tx) => tx`INSERT INTO smartoffice.user_links (id, sharer_id, receiver_id, status) VALUES (60, 16, 17, 'active')`))).toBe('42501');
    expect(await sqlState(as(16, (tx) => tx`INSERT INTO smartoffice.user_links (id, sharer_id, receiver_id) VALUES (60, 16, 12)`))).toBe('42501');
    expect(await sqlState(as(16, (tx) => tx`INSERT INTO smartoffice.user_links (id, sharer_id, receiver_id) VALUES (60, 17, 21)`))).toBe('42501');
    expect(await sqlState(as(11, (tx) => tx`INSERT INTO smartoffice.user_links (id, sharer_id, receiver_id) VALUES (60, 11, 16)`))).toBe('42501');
  });
  it('user_links: only the receiver activates; parties alone see the link; the parties cannot be changed', async () => {
    expect(await as(16, async (tx) => (await tx`UPDATE smartoffice.user_links SET status = 'active' WHERE id = 51`).count)).toBe(0);
    expect(await as(21, async (tx) => (await tx`UPDATE smartoffice.user_links SET status = 'active' WHERE id = 51`).count)).toBe(1);
    expect(await as(11, (tx) => ids(tx, 'SELECT id FROM smartoffice.user_links'))).toEqual([]);
    expect(await as(16, (tx) => ids(tx, 'SELECT id FROM smartoffice.user_links'))).toEqual([50, 51]);
    expect(await sqlState(as(21, (tx) => tx`UPDATE smartoffice.user_links SET receiver_id = 17 WHERE id = 51`))).toBe('42501');
  });
  it('user_links: either party deletes the link, which removes its shares', async () => {
    await as(17, async (tx) => {
      expect((await tx`DELETE FROM smartoffice.user_links WHERE id = 50`).count).toBe(1);
      expect(await ids(tx, contactIds)).toEqual([103]);
    });
    await db.current.admin.begin(async (tx) => {
      await tx.unsafe('SET LOCAL ROLE app_user');
      await tx`SELECT smartoffice.set_session(16)`;
      expect((await tx`DELETE FROM smartoffice.user_links WHERE id = 51`).count).toBe(1);
      await tx.unsafe('RESET ROLE');
      expect((await tx`SELECT count(*)::int AS n FROM smartoffice.shared_contacts WHERE link_id = 51`)[0]!.n).toBe(0);
      throw new RollbackSignal();
    }).catch(ignoreRollback);
  });
  it('shared_contacts: only the sharer of an active link shares, and only contacts assigned to them', async () => {
    expect(await as(16, async (tx) => (await tx`INSERT INTO smartoffice.shared_contacts VALUES (50, 111)`).count)).toBe(1);
    expect(await sqlState(as(16, (tx) => tx`INSERT INTO smartoffice.shared_contacts VALUES (50, 100)`))).toBe('42501');
    expect(await sqlState(as(16, (tx) => tx`INSERT INTO smartoffice.shared_contacts VALUES (51, 110)`))).toBe('42501');
    expect(await sqlState(as(17, (tx) => tx`INSERT INTO smartoffice.shared_contacts VALUES (50, 110)`))).toBe('42501');
  });
  it('users: enabling record sharing turns super user and enterprise view off and office security on', async () => {
    await db.current.admin.begin(async (tx) => {
      await tx`UPDATE smartoffice.users SET super_user = true, enterprise_view = true WHERE id = 15`;
      await tx`UPDATE smartoffice.users SET record_sharing = true WHERE id = 15`;
      const [u] = await tx`SELECT super_user, enterprise_view, record_sharing FROM smartoffice.users WHERE id = 15`;
      expect(u).toEqual({ super_user: false, enterprise_view: false, record_sharing: true });
      const [o] = await tx`SELECT office_security FROM smartoffice.offices WHERE id = 4`;
      expect(o!.office_security).toBe(true);
      // Bea's office is secured now: she sees only her assigned contact.
      await tx.unsafe('SET LOCAL ROLE app_user');
      await tx`SELECT smartoffice.set_session(15)`;
      expect(await ids(tx as never, contactIds)).toEqual([106]);
      throw new RollbackSignal();
    }).catch(ignoreRollback);
  });
  it('users: record sharing and enterprise view can never both hold', async () => {
    expect(await sqlState(db.current.admin`UPDATE smartoffice.users SET enterprise_view = true WHERE id = 16`)).toBe('23514');
  });
});

class RollbackSignal extends Error {}
function ignoreRollback(error: unknown): void {
  if (!(error instanceof RollbackSignal)) throw error;
}
