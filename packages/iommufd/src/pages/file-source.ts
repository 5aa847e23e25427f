/**
 * What a file gives iommufd's MAP_FILE, and what it tells iommufd afterwards:
 * the contract a memfd implements here and a guest_memfd model implements in
 * the simulator. iommufd subscribes when an area maps the file and unsubscribes
 * when the last area goes.
 */
export interface FileSource {
  /** What kind of file this is; MAP_FILE pins only memfd-like files ("memfd", "guest_memfd"). */
  readonly kind: string;
  /** Bytes in the file now. */
  readonly size: number;
  /** Folio size in bytes (4K, 2M or 1G): the largest physically contiguous, aligned run. */
  readonly folioSize: number;
  /** False when the file was opened read-only: a writable map is then EPERM. */
  readonly writable: boolean;
  /** Physical address of 4 KiB page `index`, or -1 for a hole or beyond the end. */
  physOf(index: number): number;
  /**
   * How many pages from page `index` on are present and physically contiguous
   * inside one folio, at most `maxPages`; 0 when page `index` is absent.
   */
  contiguousPages(index: number, maxPages: number): number;
  /** Subscribes to the file's events; returns the unsubscribe function. */
  subscribe(listener: (event: FileEvent) => void): () => void;
}

/** What a file source reports to its subscribers. */
export type FileEvent =
  /** The file shrank (or grew) to `size` bytes. */
  | { kind: "truncate"; size: number }
  /** [offset, offset + length) was punched out (FALLOC_FL_PUNCH_HOLE). */
  | { kind: "punch-hole"; offset: number; length: number }
  /** guest_memfd: [offset, offset + length) is about to become, or became, private or shared. */
  | { kind: "convert"; offset: number; length: number; to: "private" | "shared" };
