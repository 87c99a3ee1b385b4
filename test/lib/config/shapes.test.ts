// How values land in the less common shapes of XML and JSON files: exact expected outputs.
import { describe, expect, it } from 'vitest';
import { applyJsonOverrides } from '../../../lib/config/json';
import type { JsonFileOverrides, Value, XmlFileOverrides } from '../../../lib/config/schema';
import { applyXmlOverrides } from '../../../lib/config/xml';
import { Secret } from '../../../lib/config/secrets';

const x = (text: string, o: XmlFileOverrides) =>
  applyXmlOverrides(text, o, { configFile: 'Web.config', envFile: 'env/t.ts', resolve: (v: Value) => String(v) });
const j = (text: string, o: JsonFileOverrides) =>
  applyJsonOverrides(text, o, { configFile: 'c.json', envFile: 'env/t.ts', resolveSecret: (s: Secret) => s.name });

describe('XML: adding <add> elements', () => {
  it('into an empty section written as <appSettings></appSettings>, with the document indentation', () => {
    expect(x('<configuration>\n    <appSettings></appSettings>\n</configuration>\n', { appSettings: { A: { value: '1', add: true }, B: { value: '2', add: true } } })).toBe(
      '<configuration>\n    <appSettings>\n        <add key="A" value="1" />\n        <add key="B" value="2" />\n    </appSettings>\n</configuration>\n',
    );
  });

  it('into a section holding only blanks, or only a comment', () => {
    expect(x('<configuration>\r\n  <appSettings>\r\n  </appSettings>\r\n</configuration>', { appSettings: { A: { value: '1', add: true } } })).toBe(
      '<configuration>\r\n  <appSettings>\r\n    <add key="A" value="1" />\r\n  </appSettings>\r\n</configuration>',
    );
    expect(x('<configuration>\n  <appSettings>\n    <!-- none yet -->\n  </appSettings>\n</configuration>', { appSettings: { A: { value: '1', add: true } } })).toBe(
      '<configuration>\n  <appSettings>\n    <!-- none yet -->\n    <add key="A" value="1" />\n  </appSettings>\n</configuration>',
    );
  });

  it('into a one-line section: on the same line, in the style of the siblings', () => {
    expect(x("<configuration><appSettings><add key='A' value='1'/></appSettings></configuration>", { appSettings: { B: { value: "it's", add: true } } })).toBe(
      "<configuration><appSettings><add key='A' value='1'/><add key='B' value='it&apos;s'/></appSettings></configuration>",
    );
  });

  it('an existing key with add: true is just set', () => {
    expect(x('<configuration><appSettings><add key="A" value="1"/></appSettings></configuration>', { appSettings: { A: { value: '2', add: true } } })).toBe(
      '<configuration><appSettings><add key="A" value="2"/></appSettings></configuration>',
    );
  });

  it('an <add> without its value attribute gets one', () => {
    expect(x('<configuration><connectionStrings><add name="M" providerName="p" /></connectionStrings></configuration>', { connectionStrings: { M: 'cs' } })).toBe(
      '<configuration><connectionStrings><add name="M" providerName="p" connectionString="cs" /></connectionStrings></configuration>',
    );
  });

  it('in a Web.config whose root is in a default namespace', () => {
    const ns = '<configuration xmlns="http://schemas.microsoft.com/.NetConfiguration/v2.0">\n  <appSettings>\n    <add key="A" value="1"/>\n  </appSettings>\n</configuration>';
    expect(x(ns, { appSettings: { A: 'x', B: { value: 'y', add: true } } })).toBe(
      '<configuration xmlns="http://schemas.microsoft.com/.NetConfiguration/v2.0">\n  <appSettings>\n    <add key="A" value="x"/>\n    <add key="B" value="y"/>\n  </appSettings>\n</configuration>',
    );
  });
});

describe('XML: setting text', () => {
  const doc = '<configuration><a>old</a><b/><c></c><d><![CDATA[old]]></d><e>x<![CDATA[y]]></e></configuration>';
  it('an element with text, an empty element in both forms, a CDATA section, mixed text and CDATA', () => {
    expect(x(doc, { xpath: { '//a': 'n<1>', '//b': 'n2', '//c': 'n3', '//d': 'n4 <&>', '//e': 'n5' } })).toBe(
      '<configuration><a>n&lt;1&gt;</a><b>n2</b><c>n3</c><d><![CDATA[n4 <&>]]></d><e>n5</e></configuration>',
    );
  });
  it('a CDATA section given a value it cannot hold becomes escaped text', () => {
    expect(x(doc, { xpath: { '//d/text()': 'a]]>b\rc' } })).toBe(
      '<configuration><a>old</a><b/><c></c><d>a]]&gt;b&#13;c</d><e>x<![CDATA[y]]></e></configuration>',
    );
  });
  it('the empty string empties a text node and leaves an empty element alone', () => {
    expect(x(doc, { xpath: { '//a/text()': '', '//b': '', '//c': '' } })).toBe(
      '<configuration><a></a><b/><c></c><d><![CDATA[old]]></d><e>x<![CDATA[y]]></e></configuration>',
    );
  });
  it('attributes keep their quote character; the other quote stays literal', () => {
    expect(x(`<configuration><a p="1" q='2'/></configuration>`, { xpath: { '//a/@p': `"it's"`, '//a/@q': `"it's"` } })).toBe(
      `<configuration><a p="&quot;it's&quot;" q='"it&apos;s"'/></configuration>`,
    );
  });
});

describe('JSON shapes', () => {
  it('one-line objects stay on one line; multi-line ones get members indented like their siblings', () => {
    expect(j('{"a": {"b": 1}, "c": [1]}', { add: { 'a.x': { y: [1, 2] }, 'c[1]': 2 }, json: { 'a.b': { z: true } } })).toBe(
      '{"a": {"b": {"z":true}, "x": {"y":[1,2]}}, "c": [1, 2]}',
    );
    expect(j('{\n\t"a": {\n\t\t"b": 1\n\t}\n}', { add: { 'a.c': { d: 1 } } })).toBe('{\n\t"a": {\n\t\t"b": 1,\n\t\t"c": {\n\t\t\t"d": 1\n\t\t}\n\t}\n}');
  });

  it('empty containers, with or without comments inside', () => {
    expect(j('{\n  "a": {},\n  "b": [ ]\n}', { add: { 'a.k': 'v', 'b[0]': 1, 'b[1]': 2 } })).toBe(
      '{\n  "a": {\n    "k": "v"\n  },\n  "b": [\n    1,\n    2\n  ]\n}',
    );
    expect(j('{\n  "a": { /* later */ }\n}', { add: { 'a.k': 'v' } })).toBe('{\n  "a": {\n    "k": "v" /* later */ }\n}');
  });

  it('several adds under one missing parent create it once', () => {
    expect(j('{\n  "a": 1\n}\n', { add: { 'n.x': 1, 'n.y.z': 2, 'n.y.w': 3 } })).toBe(
      '{\n  "a": 1,\n  "n": {\n    "x": 1,\n    "y": {\n      "z": 2,\n      "w": 3\n    }\n  }\n}\n',
    );
  });

  it('a value may change type; secrets anywhere in a value are strings', () => {
    expect(j('{ "a": "1", "b": null }', { json: { a: 1, b: { pw: new Secret('PW'), list: [new Secret('X')] } } })).toBe(
      '{ "a": 1, "b": {"pw":"PW","list":["X"]} }',
    );
  });

  it('comments, escapes and number spellings elsewhere are untouched', () => {
    const text = '// head\n{\n  "u": "\\u00e9", /* c */ "n": 1.50e0,\n  "s": "old" // tail\n}';
    expect(j(text, { json: { s: 'new' } })).toBe('// head\n{\n  "u": "\\u00e9", /* c */ "n": 1.50e0,\n  "s": "new" // tail\n}');
  });
});
