// Heavy packages load on first use, not at start-up: listing tasks or printing help must not pay
// for the SSH, XML, load and bundler stacks (docs/ARCHITECTURE.md, "Start-up").
export function lazy<T>(load: () => T): () => T {
  let loaded: { value: T } | undefined;
  return () => (loaded ??= { value: load() }).value;
}
