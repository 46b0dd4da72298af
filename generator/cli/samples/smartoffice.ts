// Sample data for the SmartOffice model: used by `npm start` and by the tests.
//
// Offices (security on unless noted):   1 HQ ─ 2 Region ─┬─ 3 Branch A ─ 5 Field office
//                                                         └─ 4 Branch B (security off)
//                                       6 Other company (a second root)
import type { Sample } from './sample.ts';

export const smartofficeSample: Sample = {
  schema: 'smartoffice',
  table: 'contacts',
  sql: `
INSERT INTO smartoffice.offices (id, parent_id, name, office_security) VALUES
  (1, NULL, 'HQ', true), (2, 1, 'Region', true), (3, 2, 'Branch A', true),
  (4, 2, 'Branch B', false), (5, 3, 'Field office', true), (6, NULL, 'Other company', true);
INSERT INTO smartoffice.users (id, office_id, name, is_admin, enterprise_view, super_user, record_sharing) VALUES
  (10, 1, 'Carla (CEO, enterprise view)', false, true, false, false),
  (11, 3, 'John (agent)', false, false, false, false),
  (12, 3, 'Tom (agent)', false, false, false, false),
  (13, 3, 'Ann (assistant, proxy for John and Tom)', false, false, false, false),
  (14, 3, 'Ada (office administrator)', true, false, false, false),
  (15, 4, 'Bea (Branch B, security off)', false, false, false, false),
  (16, 6, 'Eve (expert, shares records)', false, false, false, true),
  (17, 3, 'Sam (expert in Branch A)', false, false, false, true),
  (18, 2, 'Rita (regional manager, enterprise view)', false, true, false, false),
  (19, 5, 'Finn (field office)', false, false, false, false),
  (20, 4, 'Ben (Branch B)', false, false, false, false),
  (21, 2, 'Rex (regional expert)', false, false, false, true);
INSERT INTO smartoffice.contacts (id, office_id, name, phone, is_private, private_owner_id) VALUES
  (100, 3, 'Assigned to John', '555-0100', false, NULL),
  (101, 3, 'Assigned to Tom', '555-0101', false, NULL),
  (102, 3, 'Assigned to John and Tom', '555-0102', false, NULL),
  (103, 3, 'Unassigned (all users)', '555-0103', false, NULL),
  (104, 3, 'John''s private contact', '555-0104', true, 11),
  (105, 3, 'Tom''s private contact', '555-0105', true, 12),
  (106, 4, 'Branch B, assigned to Bea', '555-0106', false, NULL),
  (107, 4, 'Branch B, assigned to Ben', '555-0107', false, NULL),
  (108, 5, 'Field office, assigned to Finn', '555-0108', false, NULL),
  (109, 1, 'HQ, assigned to Carla', '555-0109', false, NULL),
  (110, 6, 'Eve''s client, shared with Sam', '555-0110', false, NULL),
  (111, 6, 'Eve''s client, shared on a waiting link', '555-0111', false, NULL);
INSERT INTO smartoffice.contact_assignments (contact_id, user_id) VALUES
  (100, 11), (101, 12), (102, 11), (102, 12), (104, 11), (105, 12),
  (106, 15), (107, 20), (108, 19), (109, 10), (110, 16), (111, 16);
INSERT INTO smartoffice.proxies (proxy_id, agent_id) VALUES (13, 11), (13, 12);
-- John lets his proxy Ann see his private contacts; Tom enabled Ada, who is not his proxy.
INSERT INTO smartoffice.private_proxies (owner_id, proxy_id) VALUES (11, 13), (12, 14);
INSERT INTO smartoffice.user_links (id, sharer_id, receiver_id, status) VALUES (50, 16, 17, 'active'), (51, 16, 21, 'waiting');
INSERT INTO smartoffice.shared_contacts (link_id, contact_id) VALUES (50, 110), (51, 111);
`,
  personas: [
    { id: 11, name: 'John (agent)', sees: [100, 102, 103, 104] },
    { id: 12, name: 'Tom (agent)', sees: [101, 102, 103, 105] },
    { id: 13, name: 'Ann (proxy for John and Tom)', sees: [100, 101, 102, 103, 104] },
    { id: 14, name: 'Ada (office administrator)', sees: [103] },
    { id: 15, name: 'Bea (Branch B, security off)', sees: [106, 107] },
    { id: 10, name: 'Carla (CEO, enterprise view)', sees: [100, 101, 102, 103, 106, 107, 108, 109] },
    { id: 18, name: 'Rita (regional manager, enterprise view)', sees: [100, 101, 102, 103, 106, 107, 108] },
    { id: 19, name: 'Finn (field office)', sees: [108] },
    { id: 16, name: 'Eve (expert, shares records)', sees: [110, 111] },
    { id: 17, name: 'Sam (expert, receives a share)', sees: [103, 110] },
    { id: 21, name: 'Rex (expert, link still waiting)', sees: [] },
  ],
};
