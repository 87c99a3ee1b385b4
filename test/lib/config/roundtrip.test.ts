// Round trip: 1,000 generated values — XML specials, both quotes, "]]>", unicode (astral too,
// and U+0085/U+2028/U+2029, which XML 1.1 readers treat as line ends), CR/LF/CRLF, tabs, leading
// and trailing blanks, text that looks like an entity — are set through appSettings and through
// XPath (attribute, text node, CDATA section, element), then read back with a fresh parser:
// every value comes back unchanged and every output is well-formed. The generator is seeded, so a
// failure names the seed and the case and reproduces.
import { DOMParser } from '@xmldom/xmldom';
import { XMLValidator } from 'fast-xml-parser';
import * as xpath from 'xpath';
import { describe, expect, it } from 'vitest';
import { applyJsonOverrides } from '../../../lib/config/json';
import type { Value } from '../../../lib/config/schema';
import { applyXmlOverrides } from '../../../lib/config/xml';

const SEED = Number(process.env.ROUNDTRIP_SEED ?? 20261123);
const CASES = 1000;

/** mulberry32: a small seeded PRNG. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PIECES = [
  '<', '>', '&', "'", '"', '<>&\'"', ']]>', ']]', '&amp;', '&#10;', '&lt;', '&#x1F600;', '<![CDATA[', '-->', '<!--',
  '\n', '\r', '\r\n', '\t', ' ', '  ', '\u00a0', 'é', 'ß', '中文', 'עברית', '\u0085', '\u2028', '\u2029', '\ufeff', '\ufffd',
  '😀', '𝄞', '\u{10ffff}', 'a', 'Z', '0', '=', '/', '\\', '%', '$', '{', '}', '[', ']', ';', 'Server=db;Password=', '?a=1&b=2',
];

function generate(next: () => number): string {
  const n = Math.floor(next() * 12);
  let s = '';
  for (let i = 0; i < n; i++) {
    if (next() < 0.25) {
      // a random code point from the ranges XML allows
      const r = next();
      const cp =
        r < 0.5 ? 0x20 + Math.floor(next() * 0x5f) : r < 0.8 ? 0xa0 + Math.floor(next() * (0xd7ff - 0xa0)) : 0x10000 + Math.floor(next() * 0xfffff);
      s += String.fromCodePoint(cp);
    } else {
      s += PIECES[Math.floor(next() * PIECES.length)]!;
    }
  }
  const edge = next();
  if (edge < 0.1) s = ` ${s} `; // leading and trailing blanks
  else if (edge < 0.15) s = `\n${s}\t`;
  return s;
}

function base(eol: string, q: '"' | "'", bom: boolean): string {
  const lines = [
    '<?xml version="1.0" encoding="utf-8"?>',
    '<configuration>',
    '  <appSettings>',
    `    <add key=${q}Value${q} value=${q}old${q} />`,
    '  </appSettings>',
    '  <texts>',
    `    <attr v=${q}old${q}/>`,
    '    <text>old</text>',
    '    <cdata><![CDATA[old]]></cdata>',
    '    <element/>',
    '  </texts>',
    '</configuration>',
  ];
  return (bom ? '\uFEFF' : '') + lines.join(eol) + eol;
}

/** A strict, fresh parser (not configured like the renderer's): default xmldom settings, any report is a failure. */
function parseStrict(text: string) {
  const problems: string[] = [];
  const doc = new DOMParser({
    // U+FFFD is a legal character; xmldom only warns that it may hint at an encoding problem
    onError: (level, msg) => void (/replacement character/.test(msg) || problems.push(`${level}: ${msg}`)),
  }).parseFromString(text.replace(/^\uFEFF/, ''), 'text/xml');
  return { doc, problems };
}

const ctx = { configFile: 'Web.config', envFile: 'env/roundtrip.ts', resolve: (v: Value) => String(v) };

describe('round trip', () => {
  it(`${CASES} generated values set through appSettings and XPath read back unchanged, and every output parses (seed ${SEED})`, () => {
    const next = rng(SEED);
    let nonTrivial = 0;
    for (let i = 0; i < CASES; i++) {
      const value = generate(next);
      const eol = next() < 0.5 ? '\r\n' : '\n';
      const q = next() < 0.5 ? '"' : "'";
      const bom = next() < 0.3;
      const where = `seed ${SEED}, case ${i}: value ${JSON.stringify(value)}, eol ${JSON.stringify(eol)}, quote ${q}`;
      const input = base(eol, q, bom);
      let out: string;
      try {
        out = applyXmlOverrides(
          input,
          {
            appSettings: { Value: value },
            xpath: {
              '/configuration/texts/attr/@v': value,
              '/configuration/texts/text/text()': value,
              '/configuration/texts/cdata/text()': value,
              '/configuration/texts/element': value,
            },
          },
          ctx,
        );
      } catch (e) {
        throw new Error(`${where}: ${(e as Error).message}`);
      }
      expect(out.startsWith('\uFEFF'), where).toBe(bom);
      expect(XMLValidator.validate(out.replace(/^\uFEFF/, '')), where).toBe(true);
      const { doc, problems } = parseStrict(out);
      expect(problems, where).toEqual([]);
      const read = (expr: string) => {
        const nodes = xpath.select(expr, doc as unknown as Node) as Node[];
        expect(nodes.length, `${where}: ${expr}`).toBe(1);
        return nodes[0]!.nodeType === 2 ? (nodes[0] as Attr).value : nodes[0]!.textContent;
      };
      expect(read("/configuration/appSettings/add[@key='Value']/@value"), where).toBe(value);
      expect(read('/configuration/texts/attr/@v'), where).toBe(value);
      expect(read('/configuration/texts/text'), where).toBe(value);
      expect(read('/configuration/texts/cdata'), where).toBe(value);
      expect(read('/configuration/texts/element'), where).toBe(value);
      // around the values, the text is the input's, byte for byte
      const head = input.slice(0, input.indexOf('value=') + 'value='.length + 1);
      expect(out.startsWith(head), where).toBe(true);
      expect(out.endsWith(`${value === '' ? '<element/>' : '</element>'}${eol}  </texts>${eol}</configuration>${eol}`), where).toBe(true);
      if (/[<>&'"\r\n\t\u2028]|[\u{10000}-\u{10ffff}]/u.test(value)) nonTrivial++;
    }
    // the generator really does produce the hard cases
    expect(nonTrivial).toBeGreaterThan(CASES * 0.6);
  });

  it(`${CASES} generated values (lone surrogates too) set in a JSON file read back unchanged with JSON.parse (seed ${SEED})`, () => {
    const next = rng(SEED + 1);
    for (let i = 0; i < CASES; i++) {
      let value = generate(next);
      if (next() < 0.05) value += '\uD800'; // JSON can carry a lone surrogate (as \ud800)
      const eol = next() < 0.5 ? '\r\n' : '\n';
      const input = ['{', '  "a": { "b": "old" },', '  "list": ["x"]', '}', ''].join(eol);
      const where = `seed ${SEED + 1}, case ${i}: value ${JSON.stringify(value)}`;
      const out = applyJsonOverrides(
        input,
        { json: { 'a.b': value, 'list[0]': { nested: value } }, add: { [`new["${'k'}"]`]: value } },
        { configFile: 'c.json', envFile: 'env/roundtrip.ts', resolveSecret: () => '' },
      );
      const parsed = JSON.parse(out) as { a: { b: string }; list: [{ nested: string }]; new: { k: string } };
      expect(parsed.a.b, where).toBe(value);
      expect(parsed.list[0].nested, where).toBe(value);
      expect(parsed.new.k, where).toBe(value);
      expect(out.split(eol).length, where).toBeGreaterThan(4); // line ends kept, nothing collapsed
    }
  });
});
