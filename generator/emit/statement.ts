// Every emitted operation carries its own reverse, so up and down can never drift apart
// (the node-pg-migrate habit). A migration runs the ups in order and the downs in reverse.

export interface Statement {
  /** Stable identity of the object the statement creates, e.g. `policy smartoffice.contacts.contacts_private`. */
  readonly id: string;
  /** Short human comment printed above the statement. */
  readonly comment?: string;
  readonly up: string;
  readonly down: string;
}

export function statement(id: string, up: string, down: string, comment?: string): Statement {
  return comment ? { id, up, down, comment } : { id, up, down };
}

/** A section of the generated script: one artifact kind of one model. */
export interface Section {
  readonly title: string;
  readonly statements: readonly Statement[];
}
