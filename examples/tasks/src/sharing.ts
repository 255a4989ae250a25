import type { SealbaseClient } from 'sealbase';

import type { List, ListFields, Todo, TodoFields } from './schema';

/**
 * Shares a list: creates a shared space named after it and moves the list
 * and its todos in. Returns the list's new id (a moved record is a new
 * record in its new space).
 *
 * Only creating the space needs the sync server; the moves are local
 * transactions the engine pushes later. The moved records are found again
 * by their fields (the list by its `space` tag, the todos by `listId`), so
 * this does not depend on the move reporting new ids. Order: tag the list,
 * move the todos (they keep pointing at the list, which still shows them),
 * move the list, point the todos at its new id. An interruption before the
 * list moves leaves every todo visible; a failed move is untagged again.
 *
 * Files belong to their record and a move makes new records, so attached
 * files do not move by themselves: they are downloaded first (nothing has
 * moved if one cannot be), then uploaded again into the shared space for
 * the moved todos. The personal copies go with the original records.
 */
export async function shareList(client: SealbaseClient, list: List): Promise<string> {
  const { db } = client;
  const space = await client.spaces.create(list.name);
  await db.patch('lists', list.id, { space });
  const files = new Map<string, Blob>();
  try {
    const todos = await db.find<TodoFields>('todos', { filter: { listId: list.id } });
    for (const todo of todos) {
      const a = todo.attachment;
      if (a) files.set(a.file, await client.files.download(todo.id, a.file, { type: a.type }));
    }
    if (todos.length > 0) await db.move('todos', todos.map((todo) => todo.id), space);
    await db.move('lists', [list.id], space);
  } catch (e) {
    // Whatever did not move stays personal and must not claim otherwise.
    if (await db.get('lists', list.id)) await db.patch('lists', list.id, { space: null });
    throw e;
  }
  // The space is new, so the only list tagged with it is the moved one.
  const [moved] = await db.find<ListFields>('lists', { filter: { space }, limit: 1 });
  if (!moved) throw new Error('the list did not arrive in its shared space');
  const todos = await db.find<TodoFields>('todos', { filter: { listId: list.id } });
  await Promise.all(
    todos.map(async (todo) => {
      const a = todo.attachment;
      const body = a ? files.get(a.file) : undefined;
      if (!a || !body) return db.patch('todos', todo.id, { listId: moved.id });
      const file = await client.files.upload(todo.id, body);
      return db.patch('todos', todo.id, { listId: moved.id, attachment: { ...a, file } });
    }),
  );
  return moved.id;
}

/**
 * Adds a todo to a list. In a shared list the todo must end up in the
 * list's space, or the engine would push it to the personal space where the
 * other members never see it: it is inserted and moved at once, in two
 * local transactions; a record that never reached the server moves without
 * leaving anything behind.
 */
export async function addTodo(client: SealbaseClient, list: List, fields: Pick<Todo, 'title' | 'position'>): Promise<void> {
  const todo = await client.db.insert<TodoFields>('todos', { listId: list.id, done: false, ...fields });
  if (list.space) await client.db.move('todos', [todo.id], list.space);
}
