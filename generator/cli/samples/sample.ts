// The shape of a model's sample data: fixtures plus the personas `npm start` shows, each with the
// rows of the main table the contract says they see (the tests assert exactly these).
export interface Persona {
  readonly id: number | string;
  readonly name: string;
  readonly sees: readonly (number | string)[];
}

export interface Sample {
  readonly schema: string;
  /** The main secured table shown per persona. */
  readonly table: string;
  readonly sql: string;
  readonly personas: readonly Persona[];
}
