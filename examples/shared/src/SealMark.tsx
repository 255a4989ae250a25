/** The Sealbase mark: a rounded seal with a keyhole. Decorative: the app
 *  name next to it carries the meaning. */
export function SealMark({ size = 28 }: { size?: number }) {
  return (
    <svg className="sb-mark" width={size} height={size} viewBox="0 0 32 32" aria-hidden="true" focusable="false">
      <rect x="2" y="2" width="28" height="28" rx="9" fill="currentColor" />
      <circle cx="16" cy="13.5" r="4" fill="var(--sb-surface)" />
      <path d="M14.2 15.5h3.6l1.2 8h-6z" fill="var(--sb-surface)" />
    </svg>
  );
}
