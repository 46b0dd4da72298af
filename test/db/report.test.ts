// `rowguard report`: the data it gathers (counts as app_user, trees from the closure views) and the
// page it writes, rendered by headless Chromium.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { samples } from '../../generator/cli/samples/index.ts';
import { smartofficeSample } from '../../generator/cli/samples/smartoffice.ts';
import { loadModels } from '../../generator/load.ts';
import { collectReport, type ReportData, type TreeNode } from '../../generator/report/collect.ts';
import { renderReport } from '../../generator/report/html.ts';
import { dumpDom, screenshot } from '../support/chromium.ts';
import { useTestDatabase } from '../support/db.ts';

const db = useTestDatabase(async (admin) => {
  for (const sample of samples) await admin.unsafe(sample.sql);
});
const { models } = await loadModels(process.cwd(), 'policies');
const dir = mkdtempSync(join(tmpdir(), 'rowguard-report-'));

const outline = (n: TreeNode): string => `${n.label ?? n.id}${n.children.length > 0 ? `(${n.children.map(outline).join(', ')})` : ''}`;

/** The cells of a rendered matrix, as text, row by row. */
function matrixCells(dom: string, schema: string): string[][] {
  const start = dom.indexOf(`<table class="matrix" data-schema="${schema}">`);
  expect(start).toBeGreaterThanOrEqual(0);
  const table = dom.slice(start, dom.indexOf('</table>', start));
  return [...table.matchAll(/<tr[^>]*>([\s\S]*?)<\/tr>/g)].map((row) =>
    [...row[1]!.matchAll(/<t[hd][^>]*>([\s\S]*?)<\/t[hd]>/g)].map((cell) => cell[1]!.replace(/<[^>]+>/g, '').replace(/\s+/g, ' ').trim()),
  );
}

describe('report: the data', () => {
  let data: ReportData;

  it('counts what each persona sees as app_user: the sample contract for the main table', async () => {
    data = await collectReport(db.current.admin, models, samples);
    for (const sample of samples) {
      const model = data.models.find((m) => m.schema === sample.schema)!;
      expect(model.personas.map((p) => [p.id, p.visible[sample.table]])).toEqual(sample.personas.map((p) => [String(p.id), p.sees.length]));
      expect(model.mainTable).toBe(sample.table);
    }
    const so = data.models.find((m) => m.schema === 'smartoffice')!;
    expect(so.tables.find((t) => t.name === 'contacts')).toMatchObject({ rows: 12, rowSecurity: true });
    // Ada administers Branch A: she sees both proxies rows but only the unassigned contact.
    expect(so.personas.find((p) => p.id === '14')!.visible).toMatchObject({ proxies: 2, contacts: 1, offices: 6 });
  });

  it('draws the office tree from the closure view, with the count below each node', () => {
    const tree = data.models.find((m) => m.schema === 'smartoffice')!.hierarchies[0]!;
    expect(tree.name).toBe('office_tree');
    expect(tree.roots.map(outline)).toEqual(['HQ(Region(Branch A(Field office), Branch B))', 'Other company']);
    expect(tree.roots[0]!.below).toBe(4);
    expect(tree.nodeCount).toBe(6);
    expect(tree.onCycles).toEqual([]);
  });

  it('describes policies in words, one OR arm per line', () => {
    const contacts = data.models.find((m) => m.schema === 'smartoffice')!.tables.find((t) => t.name === 'contacts')!;
    const select = contacts.policies.find((p) => p.name === 'contacts_select')!;
    expect(select.using!.arms).toHaveLength(6);
    expect(select.using!.arms[4]).toEqual(['is_private is false', 'office_id is one of enterprise_office_ids']);
    expect(select.using!.sql).toContain('"contacts"."office_id" = any((select "smartoffice"."enterprise_office_ids"())::bigint[])');
    const update = contacts.policies.find((p) => p.name === 'contacts_update')!;
    expect(update.checkSameAsUsing).toBe(true);
    const links = data.models.find((m) => m.schema === 'smartoffice')!.tables.find((t) => t.name === 'user_links')!;
    expect(links.alsoEnforced).toEqual([
      {
        kind: 'column guard',
        name: 'user_links_parties_fixed',
        text: 'sharer_id, receiver_id may never change: "the parties of a user link cannot change; delete the link and request a new one"',
      },
    ]);
  });

  it('--users N: the first N users instead of the personas', async () => {
    const some = await collectReport(db.current.admin, models, samples, { users: 3 });
    const so = some.models.find((m) => m.schema === 'smartoffice')!;
    expect(so.personas.map((p) => [p.id, p.label, p.visible.contacts])).toEqual([
      ['10', 'Carla (CEO, enterprise view)', 8],
      ['11', 'John (agent)', 4],
      ['12', 'Tom (agent)', 4],
    ]);
    expect(so.personaSource).toBe('the first 3 users by id');
  });

  it('a cycle in the hierarchy data is listed, not drawn, and does not hang', async () => {
    const admin = db.current.admin;
    await admin.unsafe(`INSERT INTO smartoffice.offices (id, parent_id, name) VALUES (70, NULL, 'Loop A'), (71, 70, 'Loop B'); UPDATE smartoffice.offices SET parent_id = 71 WHERE id = 70`);
    try {
      const looped = await collectReport(admin, models, samples);
      const tree = looped.models.find((m) => m.schema === 'smartoffice')!.hierarchies[0]!;
      expect(tree.onCycles).toEqual(['70', '71']);
      expect(tree.roots.map(outline)).toEqual(['HQ(Region(Branch A(Field office), Branch B))', 'Other company']);
    } finally {
      await admin.unsafe('UPDATE smartoffice.offices SET parent_id = NULL WHERE id = 70; DELETE FROM smartoffice.offices WHERE id IN (71, 70)');
    }
  });
});

describe('report: the page', () => {
  it('is self-contained: no script, stylesheet link, image or external address', async () => {
    const html = renderReport(await collectReport(db.current.admin, models, samples));
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain('<style>');
    expect(html).not.toMatch(/<script|<link|<img|<iframe|\ssrc=|url\(|@import|https?:\/\//i);
  });

  it('renders in headless Chromium: the matrix, the tree and the policies are in the DOM, and the screenshot is drawn', async () => {
    const file = join(dir, 'report.html');
    writeFileSync(file, renderReport(await collectReport(db.current.admin, models, samples)));
    const dom = await dumpDom(file);
    const cells = matrixCells(dom, 'smartoffice');
    expect(cells[0]).toEqual(['persona', 'offices', 'users', 'contacts', 'contact_assignments', 'proxies', 'private_proxies', 'user_links', 'shared_contacts']);
    expect(cells[1]).toEqual(['all rows (no row-level security)', '6', '12', '12', '12', '2', '2', '2', '2']);
    const byPersona = new Map(cells.slice(2).map((r) => [r[0]!, r]));
    for (const p of smartofficeSample.personas) {
      const row = byPersona.get(`${p.id} ${p.name}`);
      expect(row, `${p.name} has a row`).toBeDefined();
      expect(row![3]).toBe(String(p.sees.length));
    }
    expect(dom).toMatch(/<span class="node">HQ <span class="pid">1<\/span> <span class="below">4 below<\/span><\/span>/);
    expect(dom).toContain('<b>contacts_select</b>');
    expect(dom).toContain('office_id is one of enterprise_office_ids');

    const shot = await screenshot(file, join(dir, 'report.png'), 1200, 2000);
    expect([shot.width, shot.height]).toEqual([1200, 2000]);
    // A page with one line of text inks about 0.0001 of the pixels; this report about 0.07.
    expect(shot.inked).toBeGreaterThan(0.02);
  });

  it('rowguard report writes the file', async () => {
    const out = join(dir, 'cli.html');
    const { stdout } = await promisify(execFile)('node', ['bin/rowguard.js', 'report', '--out', out, '--users', '5'], { env: { ...process.env, DATABASE_URL: db.current.url } });
    expect(stdout).toMatch(/rowguard report: wrote .*cli\.html \(\d+ model\(s\), \d+ persona\(s\)\)/);
    expect(readFileSync(out, 'utf8')).toContain('the first 5 users by id');
  });
});
