/** Types of `check-determinism.mjs`, so tests can import its scanner (allowJs is off). */

/** One banned API, the pattern that finds it and what to use instead. */
export interface BannedApi {
  readonly api: string
  readonly pattern: RegExp
  readonly replacement: string
}

/** One use of a banned API in one source text. */
export interface SourceViolation {
  readonly line: number
  readonly api: string
  readonly replacement: string
  readonly text: string
}

/** One use of a banned API in a scanned file. */
export interface Violation extends SourceViolation {
  readonly file: string
}

/** The banned APIs with their replacements. */
export declare const banned: ReadonlyArray<BannedApi>

/** Blanks comments and literal contents, keeping line breaks. */
export declare const stripNonCode: (source: string) => string

/** Banned API uses in the code of one source text. */
export declare const scanSource: (source: string) => Array<SourceViolation>

/** Banned API uses in every `.ts` file under `dir`. */
export declare const scan: (dir: string) => { readonly files: number; readonly violations: Array<Violation> }
