// What nginx's `listen` may be in an environment: checked by the schema when the file is loaded
// (before any host is reached) and again where the config is rendered.

/** Why `listen` is not PORT or ADDRESS:PORT with a port 1-65535, or undefined when it is. */
export function listenProblem(listen: string): string | undefined {
  const m = /^(?:(\*|[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):)?([0-9]{1,5})$/.exec(listen);
  if (!m) return 'expected "PORT" or "ADDRESS:PORT" (e.g. "80", "127.0.0.1:8080", "[::1]:8080")';
  const port = Number(m[2]);
  if (!(port >= 1 && port <= 65535)) return `port ${m[2]} is out of range (1-65535)`;
  return undefined;
}
