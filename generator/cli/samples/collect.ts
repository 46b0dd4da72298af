// Sample data for the Collect! model: used by `npm start` and by the tests.
//
// Clients (owned_by):   1 Acme Holdings ─ 2 Acme East ─ 3 Acme East Retail ─ 4 Acme East Retail Mall
//                       5 Beta Corp ─ 6 Beta Services
// Teams:                COLLECTIONS ⊃ EAST ⊃ EAST_CALLS ⊃ nina      (nesting, depth 3)
//                       T1 ⊃ T2 ⊃ T3 ⊃ T1, and T3 ⊃ cyd            (a cycle)
//
// Debtors (client; routing fields set — everything else NULL):
//   100 (1) sales rex          101 (2) operator nina        102 (3) access EAST
//   103 (4) clerk COLLECTIONS  104 (5) access lou           105 (6) sales lou, clerk cyd
//   106 (1) access T1          107 (2) operator T2, access olga
//   108 (5) clerk olga         109 (1) operator cole        110 (3) operator lou, access T3
// Open accounts (no Clerk, no Access): 100, 101, 109.
import type { Sample } from './sample.ts';

export const collectSample: Sample = {
  schema: 'collect',
  table: 'debtors',
  sql: `
INSERT INTO collect.clients (id, owned_by, name) VALUES
  (1, NULL, 'Acme Holdings'), (2, 1, 'Acme East'), (3, 2, 'Acme East Retail'), (4, 3, 'Acme East Retail Mall'),
  (5, NULL, 'Beta Corp'), (6, 5, 'Beta Services');
INSERT INTO collect.operators (id, name, security, strict, locked_out, client_id, apply_to_client_accounts, kind) VALUES
  ('admin', 'Ada (security off)',                                   false, false, false, NULL, false, 'operator'),
  ('nina',  'Nina (security on, non-strict, nested teams)',        true,  false, false, NULL, false, 'operator'),
  ('olga',  'Olga (security on, strict)',                          true,  true,  false, NULL, false, 'operator'),
  ('lou',   'Lou (strict, locked out by default)',                 true,  true,  true,  NULL, false, 'operator'),
  ('cyd',   'Cyd (strict, locked out, in the team cycle)',         true,  true,  true,  NULL, false, 'operator'),
  ('rex',   'Rex (non-strict, locked out)',                        true,  false, true,  NULL, false, 'operator'),
  ('cara',  'Cara (restricted by client Acme East, non-strict)',   true,  false, false, 2,    false, 'operator'),
  ('cole',  'Cole (client Beta Corp and locked out)',              true,  true,  true,  5,    false, 'operator'),
  ('amy',   'Amy (client Acme East Retail, applies to clients)',   true,  true,  false, 3,    true,  'operator'),
  ('carl',  'Carl (client operator for Acme Holdings)',            true,  true,  false, 1,    true,  'client'),
  ('cleo',  'Cleo (client operator with no Client #)',             true,  false, false, NULL, false, 'client'),
  ('kim',   'Kim (client operator, security off)',                 false, false, false, 5,    false, 'client');
INSERT INTO collect.teams (id, name) VALUES
  ('COLLECTIONS', 'Collections'), ('EAST', 'East region'), ('EAST_CALLS', 'East call desk'),
  ('T1', 'Team one'), ('T2', 'Team two'), ('T3', 'Team three');
INSERT INTO collect.team_members (team_id, member_id) VALUES
  ('COLLECTIONS', 'EAST'), ('EAST', 'EAST_CALLS'), ('EAST_CALLS', 'nina'),
  ('T1', 'T2'), ('T2', 'T3'), ('T3', 'T1'), ('T3', 'cyd');
INSERT INTO collect.debtors (id, file_number, client_id, name, address, phone, operator_id, sales_id, clerk_id, access_id,
                             last_worked, owing, group_number, group_member_number) VALUES
  (100, 'F-100', 1, 'Dana Diaz',    '1 Main St',   '555-0100', NULL,   'rex', NULL,          NULL,   '2026-11-01', 100.00, 'G1', '1'),
  (101, 'F-101', 2, 'Eli Evans',    '2 Main St',   '555-0101', 'nina', NULL,  NULL,          NULL,   '2026-11-02', 101.00, 'G1', '2'),
  (102, 'F-102', 3, 'Flo Fisher',   '3 Main St',   '555-0102', NULL,   NULL,  NULL,          'EAST', '2026-11-03', 102.00, NULL, NULL),
  (103, 'F-103', 4, 'Gus Grant',    '4 Main St',   '555-0103', NULL,   NULL,  'COLLECTIONS', NULL,   '2026-11-04', 103.00, NULL, NULL),
  (104, 'F-104', 5, 'Hal Hughes',   '5 Main St',   '555-0104', NULL,   NULL,  NULL,          'lou',  '2026-11-05', 104.00, 'G2', '1'),
  (105, 'F-105', 6, 'Ida Irving',   '6 Main St',   '555-0105', NULL,   'lou', 'cyd',         NULL,   '2026-11-06', 105.00, 'G2', '2'),
  (106, 'F-106', 1, 'Jo Jones',     '7 Main St',   '555-0106', NULL,   NULL,  NULL,          'T1',   '2026-11-07', 106.00, NULL, NULL),
  (107, 'F-107', 2, 'Kai King',     '8 Main St',   '555-0107', 'T2',   NULL,  NULL,          'olga', '2026-11-08', 107.00, NULL, NULL),
  (108, 'F-108', 5, 'Lea Lopez',    '9 Main St',   '555-0108', NULL,   NULL,  'olga',        NULL,   '2026-11-09', 108.00, NULL, NULL),
  (109, 'F-109', 1, 'Max Moore',    '10 Main St',  '555-0109', 'cole', NULL,  NULL,          NULL,   '2026-11-10', 109.00, NULL, NULL),
  (110, 'F-110', 3, 'Ned Nash',     '11 Main St',  '555-0110', 'lou',  NULL,  NULL,          'T3',   '2026-11-11', 110.00, 'G3', '1');
`,
  personas: [
    { id: 'admin', name: 'Ada (security off: every debtor)', sees: [100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110] },
    { id: 'nina', name: 'Nina (open accounts + her teams, 3 levels up)', sees: [100, 101, 102, 103, 109] },
    { id: 'olga', name: 'Olga (open accounts + named as clerk/access)', sees: [100, 101, 107, 108, 109] },
    { id: 'lou', name: 'Lou (locked out: only accounts naming him)', sees: [104, 105, 110] },
    { id: 'cyd', name: 'Cyd (locked out, teams T3 ⊂ T2 ⊂ T1 ⊂ T3)', sees: [105, 106, 107, 110] },
    { id: 'rex', name: 'Rex (locked out, named as sales)', sees: [100] },
    { id: 'cara', name: 'Cara (client Acme East and below)', sees: [101, 102, 103, 107, 110] },
    { id: 'cole', name: 'Cole (client Beta Corp; exactly its debtors)', sees: [104, 105, 108] },
    { id: 'amy', name: 'Amy (client Acme East Retail and below)', sees: [102, 103, 110] },
    { id: 'carl', name: 'Carl (client operator, Acme Holdings tree)', sees: [100, 101, 102, 103, 106, 107, 109, 110] },
    { id: 'cleo', name: 'Cleo (client operator without Client #)', sees: [] },
    { id: 'kim', name: 'Kim (client operator, security off: all)', sees: [100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110] },
  ],
};
