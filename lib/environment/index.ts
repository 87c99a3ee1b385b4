// The environment: its schema (what a file may say) and its loader (where files are found, how they run).
export * from './schema';
export * from './load';
