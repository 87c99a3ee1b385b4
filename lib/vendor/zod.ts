// The part of zod switchyard uses, by name. The published package bundles this file with zod
// inside it (scripts/build.mjs), tree-shaken: it loads in ~8 ms, where `require('zod')` takes
// ~50 ms (95 modules, 60 of them locales), paid by every deploy. The source and the tests use it
// as it is, so both run the same subset; a name missing here fails to typecheck.
import {
  array,
  boolean,
  enum as zEnum,
  globalRegistry,
  instanceof as zInstanceof,
  lazy,
  literal,
  null as zNull,
  number,
  record,
  safeParse,
  strictObject,
  string,
  union,
  unknown,
  url,
} from 'zod';

export const z = {
  array,
  boolean,
  enum: zEnum,
  globalRegistry,
  instanceof: zInstanceof,
  lazy,
  literal,
  null: zNull,
  number,
  record,
  safeParse,
  strictObject,
  string,
  union,
  unknown,
  url,
};
