// Quoting and printing. Every identifier that reaches generated SQL goes through `ident`,
// every value through `literal`, every function body through `dollarQuote`.

/** PostgreSQL truncates identifiers to NAMEDATALEN-1 bytes; we refuse instead of truncating. */
export const MAX_IDENTIFIER_BYTES = 63;

export function identifierBytes(name: string): number {
  return Buffer.byteLength(name, 'utf8');
}

/** Always quoted, so a reserved word or mixed case can never change meaning. */
export function ident(name: string): string {
  return '"' + name.replaceAll('"', '""') + '"';
}

/** schema.name, both quoted. */
export function qualified(schema: string, name: string): string {
  return `${ident(schema)}.${ident(name)}`;
}

export function literal(value: string | number | boolean | null | bigint): string {
  if (value === null) return 'NULL';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`cannot print non-finite number ${value} as SQL`);
    return String(value);
  }
  if (typeof value === 'bigint') return value.toString();
  // E'' strings would need backslash handling; standard strings only need doubled quotes.
  return "'" + value.replaceAll("'", "''") + "'";
}

/**
 * Text as an SQL line comment, every line of it: a description or reason with a line break would
 * otherwise put its next line into the statement as SQL.
 */
export function lineComment(text: string, prefix = ''): string {
  return `${prefix}-- ${text.replace(/\r\n|\r|\n/g, `\n${prefix}-- `)}`;
}

/** Dollar-quote a body with a tag that does not occur in it. */
export function dollarQuote(body: string, preferred = 'rg'): string {
  let tag = preferred;
  let n = 0;
  while (body.includes(`$${tag}$`)) tag = `${preferred}${++n}`;
  return `$${tag}$\n${body}\n$${tag}$`;
}

/** Indent every non-empty line. */
export function indent(text: string, by = '  '): string {
  return text
    .split('\n')
    .map((line) => (line.length > 0 ? by + line : line))
    .join('\n');
}

/** Code-point order, never locale order, so output bytes do not depend on the machine. */
export function byCodePoint(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
