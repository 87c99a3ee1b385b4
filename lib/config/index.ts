// The config-rendering core: what environment files may say (schema), how it is applied to
// XML and JSON files (splicing into the original text), rendering a build and diffing it.
export {
  configOverridesSchema,
  configSchemas,
  mergeOverrides,
  isJsonConfigFile,
  type ConfigOverrides,
  type FileOverrides,
  type XmlFileOverrides,
  type JsonFileOverrides,
  type JsonOverrideValue,
  type KeyOverride,
  type XpathOverride,
  type Value,
} from './schema';
export { applyXmlOverrides, keyXpath, xpathLiteral, type XmlRenderContext } from './xml';
export { applyJsonOverrides, type JsonRenderContext } from './json';
export { parseJsonPath, formatJsonPath, type PathSegment } from './jsonpath';
export { renderConfigFiles, renderConfigFilesSync, renderConfigText, configDiff, RENDERED_MODE, type RenderedFile, type RenderOptions } from './render';
export { renderForHosts, type RenderedVariants, type RenderForHostsOptions } from './deploy';
export { ConfigError, type ConfigProblem } from './errors';
export {
  Secret,
  secret,
  Masker,
  ResolvedSecrets,
  MissingSecretsError,
  resolveSecrets,
  placeholderSecrets,
  collectSecrets,
  parseSecretsFile,
  type ResolveSecretsOptions,
} from './secrets';
