// Running a release's hooks: each name may hold one hook or a list, run one after another.
import type { HookContext, HookName, Hooks } from './flow';

export async function runHooks(hooks: Hooks | undefined, name: HookName, ctx: HookContext): Promise<void> {
  const list = hooks?.[name];
  for (const h of Array.isArray(list) ? list : list ? [list] : []) await h(ctx);
}
