export { writeLoadReport, renderLoadReportHtml, escapeHtml, jsonForScript, HTML_MAX_FAILURE_ROWS } from './html';
export { loadReportJson, reportBaseName, LOAD_REPORT_SCHEMA, type LoadReportMeta, type LoadReportJson } from './json';
