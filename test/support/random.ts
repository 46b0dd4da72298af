// Deterministic pseudo-random numbers for tests that make many changes: the same sequence on
// every run, so a failure names a step that can be replayed.

/** `next(n)`: the next number in [0, n) of the sequence that starts at `seed`. */
export function random(seed: number): (n: number) => number {
  let state = seed;
  return (n) => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state % n;
  };
}
