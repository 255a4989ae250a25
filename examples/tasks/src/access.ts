import type { SpaceInfo } from 'sealbase';

import type { List } from './schema';

/** What the user may do with a list: everything in the personal space; in a
 *  shared space, what their role allows. */
export interface Access {
  /** The shared space holding the list, if any. */
  space: SpaceInfo | null;
  canWrite: boolean;
  canInvite: boolean;
}

export function access(list: List, spaces: Map<string, SpaceInfo>): Access {
  if (!list.space) return { space: null, canWrite: true, canInvite: true };
  const space = spaces.get(list.space) ?? null;
  // A list tagged with a space this device does not know yet (its record
  // synced before the space's): let the engine's own checks decide.
  if (!space) return { space: null, canWrite: true, canInvite: false };
  const joined = space.status === 'joined';
  return {
    space,
    canWrite: joined && (space.role === 'write' || space.role === 'admin'),
    canInvite: joined && space.role === 'admin',
  };
}
