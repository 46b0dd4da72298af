export async function runReport(_args: string[]): Promise<number> { return 2; }
