// A validated model → its sections of statements, in the order they must run.
import type { HierarchyNode } from '../model/nodes.ts';
import type { ValidatedModel } from '../validate/index.ts';
import { factsSection, hierarchySection, sessionSection } from './functions.ts';
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
    planHintsSection(model, factTypes),
    membershipFunctionsSection(model, factTypes),
    triggersSection(model),
    countersSection(model),
    policiesSection(model),
    viewsSection(model),
  ].filter((s) => s.statements.length > 0);
}

export type { Section, Statement } from './statement.ts';
