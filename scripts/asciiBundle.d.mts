/** Types of `asciiBundle.mjs`, so tests can import it (allowJs is off). */

/** `text` with every UTF-16 code unit outside ASCII written as a `\uXXXX` escape. */
export declare const escapeNonAscii: (text: string) => string

/** Whether every character of `text` is ASCII. */
export declare const isAscii: (text: string) => boolean
