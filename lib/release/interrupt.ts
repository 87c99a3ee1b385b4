// Ctrl-C and SIGTERM during a release become an abort at the next safe point (runRelease checks
// the signal), so no host is left half-switched. A second signal quits at once.
export function interruptible(): { signal: AbortSignal; dispose(): void } {
  const ac = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    process.stderr.write(`\nswitchyard: ${sig}: stopping at the next safe point and putting every host back (again to quit at once)\n`);
    dispose();
    ac.abort();
  };
  const dispose = () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return { signal: ac.signal, dispose };
}
