import type { Collection, Rec } from 'sealbase';

/** An app the user pinned to the top of the launchpad. Synced, so pins
 *  follow the user to every device. Not unique per app: two offline
 *  devices may both pin one, and the UI treats any pin record as pinned. */
export const pins: Collection = {
  name: 'pins',
  version: 1,
  fields: { appId: { type: 'string' } },
  indexes: [{ fields: ['appId'] }],
};

export interface PinFields {
  appId: string;
}

export type Pin = Rec<PinFields>;
