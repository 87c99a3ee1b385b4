// Golden files: realistic config files in a build directory, rendered with an environment's
// overrides, compared byte for byte with the expected files (written by hand from the inputs,
// see test/fixtures/config). A second, independent check diffs input and output line by line and
// requires that every changed line differs only inside values.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { diffLines } from 'diff';
import { describe, expect, it } from 'vitest';
import { renderConfigFiles, type RenderedFile } from '../../../lib/config/render';
import { configOverridesSchema, type ConfigOverrides } from '../../../lib/config/schema';
import { resolveSecrets, secret } from '../../../lib/config/secrets';

const fixtures = path.resolve(__dirname, '../../fixtures/config');
const buildDir = path.join(fixtures, 'build');
const envFile = 'env/uat.ts';

const SECRETS = {
  UAT_DB: 'Server=db.uat;Database=Shop;User Id=shop;Password=p@ss"w<0>rd&',
  UAT_MQ: 'amqps://worker:s3cr&t@mq.uat:5671/',
  UAT_DB_PASSWORD: 'p"w\\d',
  UAT_APPSETTINGS_DB: 'Server=db.uat;Password=\u2028é"x',
};

// What a user writes in env/uat.ts, validated by the schema the environment loader uses.
export const uatOverrides: ConfigOverrides = configOverridesSchema().parse({
  'Web.config': {
    appSettings: {
      Environment: 'uat',
      ApiBaseUrl: 'https://api.uat.example.com/api/',
      'FeatureFlags:NewCheckout': true,
      Greeting: `Hi "team" & <friends>'s`,
      "Owner's Email": 'ops+uat@example.com',
      CdnUrl: { value: 'https://cdn.uat.example.com/?a=1&b=2', add: true },
    },
    connectionStrings: {
      Main: secret('UAT_DB'),
      Reporting: 'Server=reports.uat;Database=Reports;Integrated Security=true',
    },
    xpath: {
      '/configuration/system.web/compilation/@debug': false,
      '/configuration/system.web/compilation/@targetFramework | /configuration/system.web/httpRuntime/@targetFramework': {
        value: '4.8.1',
        all: true,
      },
      '/configuration/system.web/customErrors/@mode': 'RemoteOnly',
      '/configuration/log4net/appender/layout/conversionPattern/text()': '%date %-5level [%property{host}] %message%newline',
      '/configuration/log4net/root/level/@value': 'WARN',
      "/configuration/runtime/asm:assemblyBinding/asm:dependentAssembly[asm:assemblyIdentity/@name='Newtonsoft.Json']/asm:bindingRedirect/@newVersion":
        '13.0.3.0',
      "/configuration/system.serviceModel/client/endpoint[@name='Orders']/@address": 'https://orders.uat.example.com/Orders.svc',
      '/configuration/maintenanceMessage': "Back at 6 o'clock — <promise> & 🚀",
    },
    namespaces: { asm: 'urn:schemas-microsoft-com:asm.v1' },
  },
  'worker/Acme.Worker.exe.config': {
    appSettings: { Region: { value: 'eu-west', add: true }, Tenant: { value: 'acme & co', add: true } },
    connectionStrings: { Queue: secret('UAT_MQ') },
    xpath: {
      "//setting[@name='PollSeconds']/value/text()": 30,
      "//setting[@name='Banner']/value": 'Line one\nLine two',
    },
  },
  'config/production.json': {
    json: { port: 8080, 'db.host': 'db.uat.internal', 'db.password': secret('UAT_DB_PASSWORD'), 'servers[1]': 'b.uat', 'log.level': 'warn' },
    add: { 'features.checkout.enabled': true, 'features.checkout.percent': 25 },
  },
  'appsettings.json': {
    json: { 'Logging.LogLevel["Microsoft.AspNetCore"]': 'Error', 'ConnectionStrings.Default': secret('UAT_APPSETTINGS_DB') },
    add: { 'Uat.Banner': 'UAT — test data only' },
  },
});

async function renderUat(): Promise<RenderedFile[]> {
  const secrets = resolveSecrets(uatOverrides, { env: SECRETS, envFile });
  return renderConfigFiles({ buildDir, overrides: uatOverrides, envFile, secrets });
}

const read = (rel: string) => fs.readFileSync(path.join(fixtures, rel));

/**
 * The "shape" of a piece of config text: every attribute value, XML text content, CDATA content,
 * JSON string and JSON number/literal replaced by a placeholder. Two texts with the same skeleton
 * differ only in values.
 */
function skeleton(text: string, json: boolean): string {
  if (json) {
    return text.replace(/"(?:[^"\\]|\\.)*"/g, '"…"').replace(/-?\b\d+(?:\.\d+)?(?:[eE][+-]?\d+)?\b|\btrue\b|\bfalse\b|\bnull\b/g, '0');
  }
  return text
    .replace(/<!\[CDATA\[[\s\S]*?\]\]>/g, '<![CDATA[…]]>')
    .replace(/"[^"]*"/g, '"…"')
    .replace(/'[^']*'/g, "'…'")
    .replace(/>[^<]+</g, '>…<');
}

/** Changed blocks between two texts: { removed, added } per hunk (line granularity). */
function changedBlocks(before: string, after: string): { removed: string; added: string }[] {
  const blocks: { removed: string; added: string }[] = [];
  let cur: { removed: string; added: string } | undefined;
  for (const c of diffLines(before, after)) {
    if (!c.added && !c.removed) {
      if (cur) blocks.push(cur);
      cur = undefined;
      continue;
    }
    cur ??= { removed: '', added: '' };
    if (c.removed) cur.removed += c.value;
    else cur.added += c.value;
  }
  if (cur) blocks.push(cur);
  return blocks;
}

describe('golden files', () => {
  it('renders every config file of the build exactly as the expected file, byte for byte', async () => {
    const files = await renderUat();
    expect(files.map((f) => f.path)).toEqual(['Web.config', 'worker/Acme.Worker.exe.config', 'config/production.json', 'appsettings.json']);
    for (const f of files) {
      const expected = read(`expected/${f.path}`);
      // compare as text first for a readable failure, then as bytes
      expect(f.content.toString('utf8'), f.path).toBe(expected.toString('utf8'));
      expect(Buffer.compare(f.content, expected), f.path).toBe(0);
      expect(f.mode).toBe(0o640);
      expect(Buffer.compare(f.base, read(`build/${f.path}`))).toBe(0);
    }
  });

  it('keeps the BOM and the CRLF line ends of Web.config and appsettings.json, and LF, no BOM, no final newline of app.config', async () => {
    const files = new Map((await renderUat()).map((f) => [f.path, f.content]));
    for (const p of ['Web.config', 'appsettings.json']) {
      const c = files.get(p)!;
      expect([...c.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
      const text = c.toString('utf8');
      expect(text.match(/\r\n/g)!.length).toBe(text.match(/\n/g)!.length); // every line end is CRLF
    }
    const app = files.get('worker/Acme.Worker.exe.config')!.toString('utf8');
    expect(app.startsWith('<?xml')).toBe(true);
    expect(app).not.toContain('\r');
    expect(app.endsWith('</configuration>')).toBe(true);
    expect(files.get('config/production.json')!.toString('utf8').endsWith('}\n')).toBe(true);
  });

  it('differs from the base only in the overridden values (line diff of input vs output)', async () => {
    const files = await renderUat();
    const expectedInsertions: Record<string, RegExp[]> = {
      'Web.config': [/^ {4}<add key="CdnUrl" value="https:\/\/cdn\.uat\.example\.com\/\?a=1&amp;b=2" \/>\r\n$/],
      'config/production.json': [],
      'appsettings.json': [],
      'worker/Acme.Worker.exe.config': [],
    };
    // blocks of consecutive changed lines, per file
    const expectedChangedBlocks: Record<string, number> = {
      'Web.config': 9,
      'worker/Acme.Worker.exe.config': 4,
      'config/production.json': 4,
      'appsettings.json': 3,
    };
    for (const f of files) {
      const json = f.path.endsWith('.json');
      const blocks = changedBlocks(f.base.toString('utf8'), f.content.toString('utf8'));
      const inserts = [...expectedInsertions[f.path]!];
      let valueChanges = 0;
      for (const b of blocks) {
        if (b.removed === '') {
          const re = inserts.shift();
          expect(re, `${f.path}: unexpected insertion ${JSON.stringify(b.added)}`).toBeDefined();
          expect(b.added).toMatch(re!);
          continue;
        }
        // value changes, possibly with members/elements appended inside the same block
        let added = b.added;
        if (!json && /<appSettings\/>|<appSettings>\n/.test(b.removed + added)) {
          // app.config: <appSettings/> became a section holding the two added keys
          expect(b.removed).toBe('\t<appSettings/>\n');
          expect(added).toBe('\t<appSettings>\n\t\t<add key="Region" value="eu-west"/>\n\t\t<add key="Tenant" value="acme &amp; co"/>\n\t</appSettings>\n');
          valueChanges++;
          continue;
        }
        if (b.removed === '\t\t\t\t<value />\n') {
          // an empty element given a text value: <value /> becomes <value>…</value>
          expect(added).toBe('\t\t\t\t<value>Line one\nLine two</value>\n');
          valueChanges++;
          continue;
        }
        if (json && /"features"|"Uat"/.test(added)) {
          // members added by `add` (checked byte for byte by the golden test); the rest of the block must be unchanged
          added = added.replace(/\{\n {4}"checkout": \{\n {6}"enabled": true,\n {6}"percent": 25\n {4}\}\n {2}\}/, '{}');
          added = added.replace(/,\r\n {4}"Uat": \{\r\n {8}"Banner": "UAT — test data only"\r\n {4}\}/, '');
        }
        expect(skeleton(added, json), `${f.path}: ${JSON.stringify(b)}`).toBe(skeleton(b.removed, json));
        valueChanges++;
      }
      expect(inserts, `${f.path}: insertions that did not happen`).toEqual([]);
      expect(valueChanges, f.path).toBe(expectedChangedBlocks[f.path]);
    }
  });

  it('is stable: rendering the rendered file again with the same overrides changes nothing', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-golden-'));
    try {
      for (const f of await renderUat()) {
        fs.mkdirSync(path.dirname(path.join(tmp, f.path)), { recursive: true });
        fs.writeFileSync(path.join(tmp, f.path), f.content);
      }
      const secrets = resolveSecrets(uatOverrides, { env: SECRETS, envFile });
      const again = await renderConfigFiles({ buildDir: tmp, overrides: uatOverrides, envFile, secrets });
      for (const f of again) expect(f.content.toString('utf8'), f.path).toBe(f.base.toString('utf8'));
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
