// bench/summary.ts: the scoreboard of the benchmark's targets that bench/README.md shows. The
// README's copy must be what the committed results say, and the counting must judge writes and
// the visible set against B2 too, in results written before the harness did.
import { describe, expect, it } from 'vitest';
import { SET_SESSION_QUERY, type QueryResult } from '../../bench/harness.ts';
import { readmeIsCurrent, summarize, withSummary, type ResultFile } from '../../bench/summary.ts';

const timing = (medianMs: number) => ({ runs: 5, medianMs, p95Ms: medianMs, buffers: null, planningMs: null, executionMs: null });

function result(query: string, kind: QueryResult['kind'], s: number, b2: number, targets: QueryResult['targets']): QueryResult {
  return {
    persona: 'agent',
    target: '0.01%',
    visibleRows: 1,
    visibleShare: 0.000001,
    query,
    kind,
    rows: 1,
    secured: timing(s),
    b0: null,
    b1: null,
    b2: timing(b2),
    ratios: { toB0: null, toB1: null, toB2: s / b2 },
    targets,
    securedPlan: '',
  };
}

const file = (results: QueryResult[]): ResultFile => ({ model: 'smartoffice', environment: { postgres: '18.4', date: '2026-12-03' }, results });

describe('bench summary', () => {
  it('is what bench/README.md shows for the committed results', () => {
    expect(readmeIsCurrent(), 'run `npm run bench:summary -- --write`').toBe(true);
  });

  it('judges writes against B2 from their ratio when the run did not', () => {
    const prepared = file([
      result('pk visible', 'read', 0.3, 0.1, [{ name: '≤1.2×B2', met: false }, { name: '≤2×B1', met: false }]),
      result('count', 'read', 1.0, 1.0, [{ name: '≤1.2×B2', met: true }, { name: '≤2×B1', met: true }]),
      // Written before the harness judged writes against B2: only its B0 verdict is recorded.
      result('update', 'write', 0.5, 0.25, [{ name: '≤1.1×B0', met: false }]),
    ]);
    const text = summarize({ smartoffice: { prepared } });
    expect(text).toContain('| Reads ≤ 1.2× B2, prepared | 1 of 2 | – | – | – |');
    expect(text).toContain('| Writes ≤ 1.2× B2, prepared | 0 of 1 | – | – | – |');
    expect(text).toContain('| Writes ≤ 1.1× B0, prepared | 0 of 1 | – | – | – |');
    expect(text).toContain('| update | 1 of 1 | – | – | – |');
    expect(text).toContain('| pk visible | 1 of 1 | – | – | – |');
    expect(text).toContain('SmartOffice: planned no run, prepared 2026-12-03 (PostgreSQL 18.4)');
    expect(text).toContain('| *Not a target:* set_session per transaction, ms (median of the personas, their range), prepared | – | – | – | – |');
    expect(text).not.toContain('--mixed');
  });

  it('shows a pool of users of different kinds (--mixed) when a model has that run', () => {
    const mixed = file([result('pk visible', 'read', 0.3, 0.1, [{ name: '≤1.2×B2', met: false }]), result('update', 'write', 0.2, 0.2, [{ name: '≤1.2×B2', met: true }])]);
    const text = summarize({ collect: { mixed } });
    expect(text).toContain('one statement per kind) | – | 1 of 2 | – | – |');
    expect(text).toContain('Collect!: planned no run, prepared no run, mixed 2026-12-03 (PostgreSQL 18.4)');
  });

  it("shows set_session's time per transaction: the median of the personas' medians and their range", () => {
    const session = (persona: string, ms: number): QueryResult => ({ ...result(SET_SESSION_QUERY, 'facts', ms, 1, []), persona, b2: null, ratios: { toB0: null, toB1: null, toB2: null } });
    const text = summarize({ smartoffice: { planned: file([session('a', 0.41), session('b', 0.3), session('c', 0.52)]) } });
    expect(text).toContain('| *Not a target:* set_session per transaction, ms (median of the personas, their range), planned each time | 0.41 (0.30–0.52) | – | – | – |');
  });

  it('counts the baseline misses the expert misses too, held to the same limit, and with B2s', () => {
    const against = (query: string, s: number, b2: number, b1: number, b2s: number | null, met: boolean): QueryResult => ({
      ...result(query, 'read', s, b2, [{ name: '≤2×B1', met }]),
      b1: timing(b1),
      b2AfterSession: b2s === null ? null : timing(b2s),
    });
    const planned = file([
      against('pk visible', 0.5, 0.45, 0.2, null, false), // B2 over 0.4 too
      against('equality search', 0.5, 0.3, 0.2, 0.45, false), // B2 within 0.4, B2s over it
      against('count', 0.5, 0.3, 0.2, 0.35, false), // neither: the policy's own cost
      against('first page', 0.3, 0.9, 0.2, 0.9, true), // met: not counted, whatever B2 does
    ]);
    const write: QueryResult = { ...result('insert', 'write', 0.3, 0.2, [{ name: '≤1.1×B0', met: false }]), b0: timing(0.15) };
    const text = summarize({ superoffice: { planned: { ...planned, results: [...planned.results, write] } } });
    const rows = text.split('\n').filter((l) => l.includes('those whose B2 misses it too') && l.includes('planned each time'));
    expect(rows).toEqual([
      '| *Not a target:* of the queries missing it, those whose B2 misses it too (in brackets: B2 or B2s), planned each time | – | – | – | 1 of 3 (2) |',
      '| *Not a target:* of the queries missing it, those whose B2 misses it too (in brackets: B2 or B2s), planned each time | – | – | – | 1 of 1 (1) |',
    ]);
    // The 10% persona's limit is 1.5× B1 (B2 at 0.35 misses 0.3), and a miss without a B2 counts
    // among the misses only; prepared runs are counted the same way.
    const tenPercent = { ...against('count', 0.5, 0.35, 0.2, null, false), target: '10%' as const, targets: [{ name: '≤1.5×B1', met: false }] };
    const noB2 = { ...against('pk visible', 0.5, 1, 0.2, null, false), b2: null };
    const prepared = summarize({ collect: { prepared: file([tenPercent, noB2]) } });
    expect(prepared).toContain('| *Not a target:* of the queries missing it, those whose B2 misses it too (in brackets: B2 or B2s), prepared | – | 1 of 2 (1) | – | – |');
  });

  it('says where the markers belong when the README has none', () => {
    expect(() => withSummary('# Benchmark\n', 'x')).toThrow(/markers .* are missing/);
  });
});
