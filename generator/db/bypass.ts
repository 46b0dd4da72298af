// Tools that show a DBA the whole picture (explain, report) must read rows whatever the policies
// say. The connection's own role does when it is a superuser or BYPASSRLS; otherwise it may act as
// rowguard_definer (BYPASSRLS, owns the helpers) if it is a member of it.
import type { TransactionSql } from 'postgres';
import { DEFINER_ROLE } from '../emit/roles.ts';
import { ident } from '../sql/print.ts';

export class BypassUnavailable extends Error {}

/** In the transaction, become a role that skips row-level security (SET LOCAL, so it ends with it). */
export async function actAsBypassRole(tx: TransactionSql<Record<string, unknown>>, purpose: string): Promise<void> {
  const [me] = await tx.unsafe(
    `SELECT r.rolsuper OR r.rolbypassrls AS bypass,
            CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1) THEN pg_catalog.pg_has_role(current_user, $1, 'MEMBER') ELSE false END AS definer
       FROM pg_catalog.pg_roles r WHERE r.rolname = current_user`,
    [DEFINER_ROLE],
  );
  if (me?.bypass) return;
  if (me?.definer) {
    await tx.unsafe(`SET LOCAL ROLE ${ident(DEFINER_ROLE)}`);
    return;
  }
  throw new BypassUnavailable(
    `${purpose}, so DATABASE_URL must connect as a superuser, a BYPASSRLS role or a member of ${DEFINER_ROLE} (GRANT ${DEFINER_ROLE} TO <your role>)`,
  );
}
