// The policy DSL: what a policy file imports.
export { defineModel, isModel } from './model.ts';
export type { Columns, CounterHandle, CounterSpec, KeyListHandle, KeyListSpec, IndexSpec, ModelBuilder, PolicySpec, QuerySpec, Row, RowOf, TableHandle, HierarchyHandle } from './model.ts';
export { t, ColumnSpec } from './columns.ts';
export { E, and, anyOf, allOf, or, not, when, coalesce, union, array, rank, exists, arrayOf, scalarOf, lit, raw } from './expr.ts';
export type { Value } from './expr.ts';
export { rightsMatrix } from './rights.ts';
export type { RightsMatrix, RightsMatrixSpec, RightsTable, ScopeRule } from './rights.ts';
