// Where `add: true` puts a new <add> in a section that holds more than elements (comments, CDATA,
// text, processing instructions), and that the check after splicing accepts it there and only
// there: exact expected outputs.
import { describe, expect, it } from 'vitest';
import { RenderProblem } from '../../../lib/config/errors';
import type { Value, XmlFileOverrides } from '../../../lib/config/schema';
import { applyXmlOverrides } from '../../../lib/config/xml';
import { parse, type XNode } from '../../../lib/config/xml-source';
import { verify } from '../../../lib/config/xml-verify';

const x = (text: string, o: XmlFileOverrides) =>
  applyXmlOverrides(text, o, { configFile: 'Web.config', envFile: 'env/t.ts', resolve: (v: Value) => String(v) });
const addOther = { appSettings: { Other: { value: 'x', add: true } } };
const lf = (...lines: string[]) => lines.join('\n');
const crlf = (...lines: string[]) => lines.join('\r\n');

describe('XML: adding <add> elements next to comments', () => {
  it('after the last <add>, before a comment that ends the section (the comment stays where it is)', () => {
    expect(
      x(lf('<configuration>', '  <appSettings>', '    <add key="A" value="1" />', '    <!-- a comment -->', '  </appSettings>', '</configuration>', ''), addOther),
    ).toBe(
      lf('<configuration>', '  <appSettings>', '    <add key="A" value="1" />', '    <add key="Other" value="x" />', '    <!-- a comment -->', '  </appSettings>', '</configuration>', ''),
    );
  });

  it('the Web.config of the error tests (a section ending with a comment), with a key set in the same section', () => {
    const web = lf(
      '<?xml version="1.0" encoding="utf-8"?>',
      '<configuration>',
      '  <appSettings>',
      '    <add key="ApiUrl" value="http://localhost/" />',
      `    <add key="it's &quot;quoted&quot;" value="q" />`,
      '    <!-- a comment -->',
      '  </appSettings>',
      '  <connectionStrings>',
      '    <add name="Main" connectionString="Server=.;Database=Shop" />',
      '  </connectionStrings>',
      '</configuration>',
      '',
    );
    expect(x(web, { appSettings: { ApiUrl: 'https://uat/', Other: { value: 'x', add: true } }, connectionStrings: { Reports: { value: 'Server=r', add: true } } })).toBe(
      lf(
        '<?xml version="1.0" encoding="utf-8"?>',
        '<configuration>',
        '  <appSettings>',
        '    <add key="ApiUrl" value="https://uat/" />',
        `    <add key="it's &quot;quoted&quot;" value="q" />`,
        '    <add key="Other" value="x" />',
        '    <!-- a comment -->',
        '  </appSettings>',
        '  <connectionStrings>',
        '    <add name="Main" connectionString="Server=.;Database=Shop" />',
        '    <add name="Reports" connectionString="Server=r" />',
        '  </connectionStrings>',
        '</configuration>',
        '',
      ),
    );
  });

  it('after the last <add> when comments come between the adds and after them', () => {
    const text = lf(
      '<configuration>',
      '  <appSettings>',
      '    <!-- group 1 -->',
      '    <add key="A" value="1" />',
      '    <!-- group 2 -->',
      '    <add key="B" value="2" />',
      '',
      '    <!-- <add key="Old" value="0" /> -->',
      '  </appSettings>',
      '</configuration>',
    );
    expect(x(text, { appSettings: { C: { value: '3', add: true }, D: { value: '4', add: true } } })).toBe(
      lf(
        '<configuration>',
        '  <appSettings>',
        '    <!-- group 1 -->',
        '    <add key="A" value="1" />',
        '    <!-- group 2 -->',
        '    <add key="B" value="2" />',
        '    <add key="C" value="3" />',
        '    <add key="D" value="4" />',
        '',
        '    <!-- <add key="Old" value="0" /> -->',
        '  </appSettings>',
        '</configuration>',
      ),
    );
  });

  it('a comment on the line of the last <add> stays on that line, also when it spans lines', () => {
    expect(x(lf('<configuration>', '  <appSettings>', '    <add key="A" value="1" /> <!-- about A -->', '    <!-- end -->', '  </appSettings>', '</configuration>'), addOther)).toBe(
      lf('<configuration>', '  <appSettings>', '    <add key="A" value="1" /> <!-- about A -->', '    <add key="Other" value="x" />', '    <!-- end -->', '  </appSettings>', '</configuration>'),
    );
    expect(x(lf('<configuration>', '  <appSettings>', '    <add key="A" value="1" /><!-- about', '         A -->', '  </appSettings>', '</configuration>'), addOther)).toBe(
      lf('<configuration>', '  <appSettings>', '    <add key="A" value="1" /><!-- about', '         A -->', '    <add key="Other" value="x" />', '  </appSettings>', '</configuration>'),
    );
  });

  it('into a section holding only a comment, with CRLF line ends and a BOM', () => {
    const text = '\uFEFF' + crlf('<configuration>', '\t<appSettings>', '\t\t<!-- none yet -->', '\t</appSettings>', '</configuration>', '');
    expect(x(text, { appSettings: { A: { value: '1', add: true }, B: { value: '2', add: true } } })).toBe(
      '\uFEFF' + crlf('<configuration>', '\t<appSettings>', '\t\t<!-- none yet -->', '\t\t<add key="A" value="1" />', '\t\t<add key="B" value="2" />', '\t</appSettings>', '</configuration>', ''),
    );
  });

  it('with CRLF line ends: after a comment between adds and before a trailing one', () => {
    const text = crlf(
      '<configuration>',
      '    <connectionStrings>',
      "        <add name='A' connectionString='a'/>",
      '        <!-- reporting -->',
      "        <add name='B' connectionString='b'/>",
      '        <!-- end -->',
      '    </connectionStrings>',
      '</configuration>',
      '',
    );
    expect(x(text, { connectionStrings: { C: { value: 'c&d', add: true } } })).toBe(
      crlf(
        '<configuration>',
        '    <connectionStrings>',
        "        <add name='A' connectionString='a'/>",
        '        <!-- reporting -->',
        "        <add name='B' connectionString='b'/>",
        "        <add name='C' connectionString='c&amp;d'/>",
        '        <!-- end -->',
        '    </connectionStrings>',
        '</configuration>',
        '',
      ),
    );
  });

  it('in a one-line section the new <add> follows the last one directly, before the comment', () => {
    expect(x('<configuration><appSettings><add key="A" value="1"/><!-- c --></appSettings></configuration>', addOther)).toBe(
      '<configuration><appSettings><add key="A" value="1"/><add key="Other" value="x"/><!-- c --></appSettings></configuration>',
    );
  });

  it('CDATA, text and a processing instruction after the last <add> stay after the new one', () => {
    const text = lf('<configuration>', '  <appSettings>', '    <add key="A" value="1" />', '    <![CDATA[x]]>', '    text', '    <?pi x?>', '  </appSettings>', '</configuration>');
    expect(x(text, addOther)).toBe(
      lf('<configuration>', '  <appSettings>', '    <add key="A" value="1" />', '    <add key="Other" value="x" />', '    <![CDATA[x]]>', '    text', '    <?pi x?>', '  </appSettings>', '</configuration>'),
    );
  });

  it('into a section holding only CDATA: after it', () => {
    expect(x(lf('<configuration>', '  <appSettings>', '    <![CDATA[x]]>', '  </appSettings>', '</configuration>'), addOther)).toBe(
      lf('<configuration>', '  <appSettings>', '    <![CDATA[x]]>', '    <add key="Other" value="x" />', '  </appSettings>', '</configuration>'),
    );
  });

  it('blanks at the end of the last line are kept; text that is not blank is never split', () => {
    expect(x(lf('<configuration>', '  <appSettings>', '    <add key="A" value="1" />  ', '  </appSettings>', '</configuration>'), addOther)).toBe(
      lf('<configuration>', '  <appSettings>', '    <add key="A" value="1" />  ', '    <add key="Other" value="x" />', '  </appSettings>', '</configuration>'),
    );
    expect(x(lf('<configuration>', '  <appSettings>', '    <add key="A" value="1" />  ', '    stray text', '  </appSettings>', '</configuration>'), addOther)).toBe(
      lf('<configuration>', '  <appSettings>', '    <add key="A" value="1" />', '    <add key="Other" value="x" />  ', '    stray text', '  </appSettings>', '</configuration>'),
    );
  });
});

describe('XML: the check after splicing new <add> elements', () => {
  const section = (doc: XNode) => Array.from(doc.documentElement!.childNodes).find((n) => n.nodeName === 'appSettings')!;
  const input = parse(lf('<configuration>', '  <appSettings>', '    <add key="A" value="1" />', '    <!-- c -->', '  </appSettings>', '</configuration>'));
  const expectations = (after: XNode | null) => ({
    values: new Map(),
    addedAttrs: new Map(),
    addedElements: new Map([[section(input.doc), { after, elements: [{ keyAttr: 'key', key: 'Other', valueAttr: 'value', value: 'x' }] }]]),
  });
  const addA = () => Array.from(section(input.doc).childNodes).find((n) => n.nodeName === 'add')!;
  const output = (...lines: string[]) => parse(lf('<configuration>', '  <appSettings>', ...lines, '  </appSettings>', '</configuration>')).doc;
  const check = (out: XNode, after: XNode | null) => () => verify(input.doc, out, expectations(after));

  it('accepts the new element where it was put, whatever blanks surround it', () => {
    expect(check(output('    <add key="A" value="1" />', '    <add key="Other" value="x" />', '    <!-- c -->'), addA())).not.toThrow();
    expect(check(output('    <add key="A" value="1" /><add key="Other" value="x" />', '', '    <!-- c -->'), addA())).not.toThrow();
  });

  it('rejects it anywhere else, a wrong value, or a comment that changed', () => {
    const msg = 'internal error: after splicing, element <appSettings> at line 2 did not get <add key="Other"> with the value set';
    expect(check(output('    <add key="A" value="1" />', '    <!-- c -->', '    <add key="Other" value="x" />'), addA())).toThrow(msg);
    expect(check(output('    <add key="Other" value="x" />', '    <add key="A" value="1" />', '    <!-- c -->'), addA())).toThrow(RenderProblem);
    expect(check(output('    <add key="A" value="1" />', '    <add key="Other" value="y" />', '    <!-- c -->'), addA())).toThrow(msg);
    expect(check(output('    <add key="A" value="1" />', '    <add key="Other" value="x" />', '    <!-- d -->'), addA())).toThrow('comment at line 4 changed');
    expect(check(output('    <add key="A" value="1" />', '    <add key="Other" value="x" />', '    <!-- c -->'), null)).toThrow(RenderProblem);
  });
});
