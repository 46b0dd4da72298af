// A validated model → its sections of statements, in the order they must run.
import type { HierarchyNode } from '../model/nodes.ts';
import type { ValidatedModel } from '../validate/index.ts';
import { CombinedValues } from './combined.ts';
import { factDefinitions, factsSection, hierarchySection, sessionSection } from './functions.ts';
import { grantsSection, indexesSection } from './grants.ts';
import { policiesSection } from './policies.ts';
import { planHintsSection } from './hints.ts';
import { rlsSection, schemaSection, tablesSection } from './tables.ts';
import { triggersSection } from './triggers.ts';
import { countersSection } from './counters.ts';
import { viewsSection } from './views.ts';
import { membershipFunctionsSection, seedsSection } from './seeds.ts';
import type { Section } from './statement.ts';

export function compileModel({ model, factTypes }: ValidatedModel): Section[] {
  // Printed first: printing them finds the values their functions compute (combined.ts).
  const combined = new CombinedValues(model, factDefinitions(model, factTypes));
  const policies = policiesSection(model, combined);
  const nodeType = (h: HierarchyNode) => model.tables.find((t) => t.name === h.table)!.columns.find((c) => c.name === h.child)!.type;
  return [
    schemaSection(model),
    tablesSection(model),
    indexesSection(model),
    seedsSection(model),
    rlsSection(model),
    // Grants come before functions and views: ALTER … OWNER TO the definer checks nothing, but
    // views and functions owned by it must be able to read the tables from their first use.
    grantsSection(model),
    sessionSection(model),
    hierarchySection(model, nodeType),
    factsSection(model, factTypes),
    combined.section(),
    planHintsSection(model, factTypes),
    membershipFunctionsSection(model, factTypes),
    triggersSection(model),
    countersSection(model),
    policies,
    viewsSection(model),
  ].filter((s) => s.statements.length > 0);
}

export type { Section, Statement } from './statement.ts';
