/**
 * How override values are written into config files. Shared by the XML and JSON writers and by
 * the secret Masker, so that every form in which a secret can appear in a rendered file is a
 * form the Masker knows about.
 */

/**
 * Characters an XML 1.0 document cannot contain at all, not even as a character reference:
 * C0 controls other than tab/LF/CR, lone surrogates, U+FFFE and U+FFFF.
 */
const NOT_XML_CHAR = /[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

/** The index of the first character XML 1.0 cannot represent, or -1. */
export function invalidXmlCharIndex(value: string): number {
  const m = NOT_XML_CHAR.exec(value);
  return m ? m.index : -1;
}

/**
 * U+0085, U+2028 and U+2029 are ordinary characters in XML 1.0 but line ends in XML 1.1 (and
 * xmldom normalises them to LF when parsing); writing them as character references keeps them
 * intact for every reader.
 */
function xml11LineEnd(c: string): string {
  return `&#x${c.codePointAt(0)!.toString(16).toUpperCase()};`;
}

/**
 * Escape a value for an attribute delimited by `quote`. Tab, LF and CR become character
 * references: written literally they would be turned into spaces by attribute-value normalisation.
 */
export function escapeXmlAttr(value: string, quote: '"' | "'"): string {
  return value.replace(/[&<>"'\t\n\r\u0085\u2028\u2029]/g, (c) => {
    switch (c) {
      case '&': return '&amp;';
      case '<': return '&lt;';
      case '>': return '&gt;';
      case '"': return quote === '"' ? '&quot;' : c;
      case "'": return quote === "'" ? '&apos;' : c;
      case '\t': return '&#9;';
      case '\n': return '&#10;';
      case '\r': return '&#13;';
      default: return xml11LineEnd(c);
    }
  });
}

/**
 * Escape a value for a text node. A LF is written as the file's line end (`eol`), which a parser
 * reads back as LF; a CR is written as `&#13;` (a literal one would be normalised away).
 */
export function escapeXmlText(value: string, eol: '\n' | '\r\n'): string {
  return value.replace(/[&<>\n\r\u0085\u2028\u2029]/g, (c) => {
    switch (c) {
      case '&': return '&amp;';
      case '<': return '&lt;';
      case '>': return '&gt;';
      case '\n': return eol;
      case '\r': return '&#13;';
      default: return xml11LineEnd(c);
    }
  });
}

/** Whether a value can be written inside one CDATA section and read back unchanged. */
export function fitsInCdata(value: string): boolean {
  return !/\]\]>|[\r\u0085\u2028\u2029]/.test(value);
}

/** The content of a CDATA section holding `value` (check {@link fitsInCdata} first). */
export function cdataContent(value: string, eol: '\n' | '\r\n'): string {
  return value.replace(/\n/g, eol);
}

/**
 * JSON.stringify, except that U+2028 and U+2029 are escaped too (valid raw in JSON, but line
 * terminators to many editors and older JavaScript).
 */
export function toJson(value: unknown, indent?: string): string {
  return JSON.stringify(value, null, indent).replace(/[\u2028\u2029]/g, (c) => (c === '\u2028' ? '\\u2028' : '\\u2029'));
}

/** A string as it appears between the quotes of a JSON string literal written by {@link toJson}. */
export function jsonStringBody(value: string): string {
  return toJson(value).slice(1, -1);
}

/**
 * Every form in which the value `v` can appear in a file written by switchyard (raw, XML attribute
 * with either quote, XML text with either line end, JSON string body).
 */
export function writtenForms(v: string): string[] {
  const forms = new Set<string>([
    v,
    escapeXmlAttr(v, '"'),
    escapeXmlAttr(v, "'"),
    escapeXmlText(v, '\n'),
    escapeXmlText(v, '\r\n'),
    cdataContent(v, '\r\n'),
    jsonStringBody(v),
  ]);
  return [...forms].filter((f) => f.length > 0);
}
