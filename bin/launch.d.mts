/** Types of `launch.mjs`, so tests can import it (allowJs is off). */

/** What `scripts/build.mjs` records in dist/manifest.json. */
export interface Manifest {
  /** Source entry point (from the repository root) -> its bundle (from the repository root). */
  readonly entries: Readonly<Record<string, string>>
  /** Input file (from the repository root) -> [modification time in ms, size in bytes] at build time. */
  readonly inputs: Readonly<Record<string, readonly [number, number]>>
}

/** The repository root. */
export declare const root: string
/** Where the build writes its manifest (the last file it writes). */
export declare const manifestFile: string
/** Reads the manifest; undefined when there is none or it cannot be parsed. */
export declare const readManifest: () => Manifest | undefined
/** Whether every bundle the manifest lists is there and every input still has the modification time and size it had. */
export declare const isCurrent: (manifest: Manifest) => boolean
/** The bundle of `source` when it is current; undefined otherwise. */
export declare const bundleOf: (source: string) => string | undefined
/** Imports `source`'s current bundle, or registers tsx and imports the source itself. */
export declare const launch: (source: string) => Promise<unknown>
