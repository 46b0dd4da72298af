// everyRowWhen and the key ranges of fact queries claim "every row" with the least and greatest
// value of the primary key's type. Checked against PostgreSQL with each type's extreme values
// (NaN sorts above Infinity in numeric; '' is the least text; ±infinity for dates and times).
import { describe, expect, it } from 'vitest';
import { typeMaximum, typeMinimum } from '../../generator/model/types.ts';
import { rolledBack, useTestDatabase } from '../support/db.ts';

const db = useTestDatabase();

const extremes: Record<string, readonly string[]> = {
  bigint: ['-9223372036854775808', '0', '9223372036854775807'],
  integer: ['-2147483648', '2147483647'],
  smallint: ['-32768', '32767'],
  text: ['', ' ', 'a', 'Z', 'ÿ', '\u{10FFFF}'],
  'varchar(20)': ['', 'zzz'],
  date: ['-infinity', '4713-01-01 BC', '5874897-12-31', 'infinity'],
  timestamptz: ['-infinity', '4713-01-01 00:00:00+00 BC', '294276-12-31 23:59:59+00', 'infinity'],
  timestamp: ['-infinity', '294276-12-31 23:59:59', 'infinity'],
  numeric: ['-Infinity', '-1e100', '0', '1e100', 'Infinity', 'NaN'],
  'numeric(12,2)': ['-9999999999.99', '9999999999.99', 'NaN'],
  uuid: ['00000000-0000-0000-0000-000000000000', 'ffffffff-ffff-ffff-ffff-ffffffffffff'],
};

describe('primary-key bounds of every key type', () => {
  for (const [type, values] of Object.entries(extremes)) {
    it(`${type}: every value lies within the bounds`, async () => {
      const lo = typeMinimum(type)!;
      const hi = typeMaximum(type);
      expect(lo).toBeDefined();
      await rolledBack(db.current.admin, async (tx) => {
        await tx.unsafe(`CREATE TEMP TABLE k (id ${type} PRIMARY KEY)`);
        // Literals, not parameters: the client would parse date parameters as JavaScript dates.
        await tx.unsafe(`INSERT INTO k VALUES ${values.map((v) => `('${v.replaceAll("'", "''")}'::${type})`).join(', ')}`);
        const range = hi === undefined ? `id >= ${lo}` : `id >= ${lo} AND id <= ${hi}`;
        const [row] = await tx.unsafe(`SELECT count(*)::int AS n FROM k WHERE ${range}`);
        expect(row!.n).toBe(values.length);
      });
    });
  }
});
