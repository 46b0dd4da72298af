// Sample data for the PolicyCenter model: used by `npm start` and by the tests.
//
// Zones: 1 East, 2 West, 3 Central. Organizations: 10 Carrier HQ (East), 11 West Agency
// (West, external), 12 Central Agency (Central), 13 Unzoned Branch (no zone).
import type { Sample } from './sample.ts';

export const policycenterSample: Sample = {
  schema: 'policycenter',
  table: 'organizations',
  sql: `
INSERT INTO policycenter.security_zones (id, name) VALUES (1, 'East'), (2, 'West'), (3, 'Central');
INSERT INTO policycenter.organizations (id, name, security_zone_id, is_external) VALUES
  (10, 'Carrier HQ', 1, false), (11, 'West Agency', 2, true), (12, 'Central Agency', 3, false), (13, 'Unzoned Branch', NULL, false);
INSERT INTO policycenter.groups (id, organization_id, name, security_zone_id) VALUES
  (100, 10, 'East underwriters', 1), (101, 11, 'West agents', 2), (102, 12, 'Central team', 3), (103, 10, 'HQ admins', NULL);
INSERT INTO policycenter.users (id, organization_id, name, is_external, view_all_users, producer_code_security) VALUES
  (1, 10, 'Ivan (internal, East)', false, false, false),
  (2, 10, 'Wendy (internal, Central group)', false, false, false),
  (3, 10, 'Vera (internal, View All Users)', false, true, false),
  (4, 11, 'Xena (external, View All Users ignored)', true, true, false),
  (5, 10, 'Paul (internal, East, producer code security)', false, false, true),
  (6, 13, 'Nora (internal, no groups)', false, false, false),
  (7, 10, 'Hank (internal, group without zone)', false, false, false),
  (8, 12, 'Cole (internal, Central)', false, false, false);
INSERT INTO policycenter.group_members (group_id, user_id) VALUES (100, 1), (102, 2), (101, 4), (100, 5), (103, 7), (102, 8);
INSERT INTO policycenter.producer_codes (id, organization_id, code) VALUES
  (1000, 10, 'HQ-1'), (1001, 11, 'W-1'), (1002, 12, 'C-1'), (1003, 10, 'HQ-2'), (1004, 10, 'HQ-3');
INSERT INTO policycenter.producer_code_members (producer_code_id, user_id, group_id) VALUES (1000, 5, NULL), (1003, NULL, 100);
INSERT INTO policycenter.accounts (id, name, producer_code_id, created_by) VALUES
  (5000, 'Acme', 1000, 1), (5001, 'Westside', 1001, 4), (5002, 'Centro', 1002, 2), (5003, 'Eastern Mills', 1003, 5);
`,
  personas: [
    { id: 1, name: 'Ivan (internal, East zone)', sees: [10] },
    { id: 2, name: 'Wendy (internal, Central zone; HQ is her own)', sees: [10, 12] },
    { id: 3, name: 'Vera (View All Users)', sees: [10, 11, 12, 13] },
    { id: 4, name: 'Xena (external; View All Users ignored)', sees: [11] },
    { id: 5, name: 'Paul (East, producer code security)', sees: [10] },
    { id: 6, name: 'Nora (no groups: own organization only)', sees: [13] },
    { id: 7, name: 'Hank (group without a zone)', sees: [10] },
    { id: 8, name: 'Cole (Central)', sees: [12] },
  ],
};
