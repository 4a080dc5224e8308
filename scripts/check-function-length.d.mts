/** Types of `check-function-length.mjs`, so tests can import its measuring and comparing (allowJs is off). */

/** The longest a new function may be, in lines of code. */
export declare const lineCountMax: number

/** One function over the limit in one source text. */
export interface LongFunction {
  readonly name: string
  readonly lines: number
  readonly line: number
}

/** The functions of one source text longer than `lineCountMax`, in source order. */
export declare const measureSource: (source: string, filename: string) => Array<LongFunction>

/** What fails against the ratchet's entries, and the entries lowered to what was measured. */
export declare const compare: (
  lengths: ReadonlyMap<string, { readonly lines: number; readonly line: number }>,
  listed: Readonly<Record<string, number>>
) => { readonly failures: Array<string>; readonly lowered: Record<string, number> }
