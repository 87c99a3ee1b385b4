import type { LoadResult } from '../../load/engine';
import { summarize } from '../../load/engine';

export interface LoadReportMeta {
  title: string;
  /** environment name (uat, local, …) */
  env?: string;
  notes?: string[];
  /** base file name (no extension); default `load-<startedAt>` */
  name?: string;
}

export const LOAD_REPORT_SCHEMA = 'switchyard.load-report/1';

/** The JSON report: every figure of the run, plus the summary text as printed. */
export interface LoadReportJson {
  schema: typeof LOAD_REPORT_SCHEMA;
  title: string;
  env?: string;
  notes: string[];
  generatedAt: string;
  summary: string;
  result: LoadResult;
}

export function loadReportJson(result: LoadResult, meta: LoadReportMeta): LoadReportJson {
  const doc: LoadReportJson = {
    schema: LOAD_REPORT_SCHEMA,
    title: meta.title,
    notes: meta.notes ?? [],
    generatedAt: new Date().toISOString(),
    summary: summarize(result),
    result,
  };
  if (meta.env !== undefined) doc.env = meta.env;
  return doc;
}

/** `load-2025-11-23T15-48-01-123Z`: sortable, unique per run, safe on every file system. */
export function reportBaseName(result: LoadResult, meta: LoadReportMeta): string {
  if (meta.name !== undefined) {
    if (!/^[\w.-]+$/.test(meta.name) || meta.name.startsWith('.')) throw new Error(`report: invalid file name ${JSON.stringify(meta.name)}`);
    return meta.name;
  }
  return `load-${result.startedAt.replace(/[:.]/g, '-')}`;
}
