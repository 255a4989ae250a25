/** `did:key:z6MkhaXg…Rm2V`: enough of a DID to recognise it at a glance;
 *  the full value belongs in a title or a copy button. */
export function shortDid(did: string): string {
  const prefix = did.startsWith('did:key:') ? 'did:key:' : '';
  const rest = did.slice(prefix.length);
  if (rest.length <= 16) return did;
  return `${prefix}${rest.slice(0, 8)}…${rest.slice(-4)}`;
}
