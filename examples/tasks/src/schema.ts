import type { Collection, Rec } from 'sealbase';

/** A list of todos. `space` is the shared space the list was moved into
 *  (absent: the user's personal space); it travels inside the record so
 *  every member's device knows the list is shared and with whom. */
export const lists: Collection = {
  name: 'lists',
  version: 1,
  fields: {
    name: { type: 'string' },
    space: { type: 'string', optional: true },
  },
};

/** A todo. `position` orders a list (new todos go last); `notes` is
 *  collaborative text, so two people editing notes at once both keep
 *  their words. `attachment` names a file of this record (uploaded through
 *  `client.files`, end-to-end encrypted like the record): the server knows
 *  neither its name nor its type, only its sealed size. */
export const todos: Collection = {
  name: 'todos',
  version: 1,
  fields: {
    listId: { type: 'string' },
    title: { type: 'string' },
    done: { type: 'boolean' },
    position: { type: 'number' },
    notes: { type: 'text', optional: true },
    attachment: {
      type: 'object',
      optional: true,
      fields: {
        file: { type: 'string' },
        name: { type: 'string' },
        type: { type: 'string' },
        size: { type: 'integer' },
      },
    },
  },
  indexes: [{ fields: ['listId', 'position'] }],
};

export interface ListFields {
  name: string;
  space?: string | null;
}

export interface TodoFields {
  listId: string;
  title: string;
  done: boolean;
  position: number;
  notes?: string | null;
  attachment?: Attachment | null;
}

/** A file attached to a todo: its id in `client.files`, and what the UI shows of it. */
export interface Attachment {
  file: string;
  name: string;
  type: string;
  size: number;
}

export type List = Rec<ListFields>;
export type Todo = Rec<TodoFields>;
