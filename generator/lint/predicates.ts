// Reading policy predicates as PostgreSQL prints them back (pg_policies.qual / with_check, i.e.
// pg_get_expr): which functions are called per row, and which of the table's columns are matched
// against a per-statement value (the columns an index should cover).
//
// A call inside `( SELECT … )` is planned as an InitPlan or SubPlan; the generated predicates wrap
// every fact that way, so it runs once per statement. A bare call in the predicate runs once per
// row the query reads.

export interface FunctionCall {
  /** As printed, e.g. `smartoffice.my_office_id` or `lower`. */
  readonly name: string;
  readonly schema: string | undefined;
  /** Inside a `( SELECT … )`: evaluated once per statement (or per outer row when correlated). */
  readonly wrapped: boolean;
}

const IDENT_START = /[A-Za-z_"]/;

/** Every function call in a printed expression, with whether a sub-select wraps it. */
export function functionCalls(text: string): FunctionCall[] {
  const calls: FunctionCall[] = [];
  // One frame per open parenthesis: does it open a sub-select?
  const frames: boolean[] = [];
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    if (ch === "'") {
      i = skipQuoted(text, i, "'");
      continue;
    }
    if (ch === '(') {
      frames.push(/^\(\s*SELECT\b/i.test(text.slice(i, i + 12)));
      i++;
      continue;
    }
    if (ch === ')') {
      frames.pop();
      i++;
      continue;
    }
    if (IDENT_START.test(ch) && !/[\w$]/.test(text[i - 1] ?? ' ')) {
      const start = i;
      const parts: string[] = [];
      for (;;) {
        if (text[i] === '"') {
          const end = skipQuoted(text, i, '"');
          parts.push(text.slice(i + 1, end - 1).replaceAll('""', '"'));
          i = end;
        } else {
          const m = /^[A-Za-z_][\w$]*/.exec(text.slice(i));
          if (!m) break;
          parts.push(m[0]);
          i += m[0].length;
        }
        if (text[i] === '.' && /[A-Za-z_"]/.test(text[i + 1] ?? '')) i++;
        else break;
      }
      // `::type(…)` is a cast with a type modifier, not a call.
      const isCast = text.slice(Math.max(0, start - 2), start) === '::';
      if (text[i] === '(' && parts.length > 0 && !isCast) {
        calls.push({ name: parts.join('.'), schema: parts.length > 1 ? parts[0] : undefined, wrapped: frames.includes(true) });
      }
      continue;
    }
    i++;
  }
  return calls;
}

function skipQuoted(text: string, start: number, quote: string): number {
  let i = start + 1;
  while (i < text.length) {
    if (text[i] === quote) {
      if (text[i + 1] === quote) i += 2;
      else return i + 1;
    } else i++;
  }
  return i;
}

const COLUMN = '([A-Za-z_][\\w$]*|"(?:[^"]|"")+")';
/** `(col = ( SELECT …` and `(col = ANY (( SELECT …`, and the same against a bare function call. */
const MATCHED_COLUMN = new RegExp(`\\(${COLUMN} = (?:ANY \\()?(?:\\(+\\s*SELECT\\b|[A-Za-z_][\\w$]*\\.[A-Za-z_][\\w$]*\\()`, 'g');

/** Columns of the policy's own table compared with `=` / `= ANY` to a value computed per statement. */
export function matchedColumns(text: string): string[] {
  const out = new Set<string>();
  for (const m of text.matchAll(MATCHED_COLUMN)) {
    const raw = m[1]!;
    out.add(unquote(raw));
  }
  return [...out];
}

/** `ARRAY[col, col, …]` of plain columns, as PostgreSQL prints a policy's or an index's expression. */
const COLUMN_ARRAY = new RegExp(`ARRAY\\[(${COLUMN}(?:, ${COLUMN})+)\\]`, 'g');

function unquote(raw: string): string {
  return raw.startsWith('"') ? raw.slice(1, -1).replaceAll('""', '"') : raw;
}

/** The columns of each `ARRAY[col, …]` in `text` (arrays of anything but plain columns are skipped). */
export function columnArrays(text: string): string[][] {
  return [...text.matchAll(COLUMN_ARRAY)].map((m) => [...m[1]!.matchAll(new RegExp(COLUMN, 'g'))].map((c) => unquote(c[0])));
}

/** The column arrays a predicate matches with `&&` against a per-statement value (an anyOf arm). */
export function overlappedColumnArrays(text: string): string[][] {
  return [...text.matchAll(new RegExp(`${COLUMN_ARRAY.source} && \\(+\\s*SELECT\\b`, 'g'))].flatMap((m) => columnArrays(m[0]));
}
