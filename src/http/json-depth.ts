/**
 * The deepest nesting of objects and arrays in a JSON text, or `limit + 1` as soon as it is known to be deeper.
 *
 * Written by hand because the check must happen before `JSON.parse` builds (and recursion walks) the deep structure,
 * and no JSON library offers a depth limit on the raw text. A single pass without allocation; string contents, most
 * of a typical body, are jumped over with `indexOf` to their closing quote, so brackets inside strings do not count.
 * The text is not validated here; the parser that follows does that.
 */
export function jsonDepth(text: string, limit: number): number {
  let depth = 0;
  let deepest = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === 34 /* " */) {
      i = closingQuote(text, i);
      // An unterminated string: nothing after it counts, and the parser rejects the text.
      if (i === -1) return deepest;
    } else if (code === 123 /* { */ || code === 91 /* [ */) {
      depth++;
      if (depth > deepest) {
        deepest = depth;
        if (deepest > limit) return deepest;
      }
    } else if (code === 125 /* } */ || code === 93 /* ] */) depth--;
  }
  return deepest;
}

/** The index of the quote that closes the string opened at `open`, or -1. */
function closingQuote(text: string, open: number): number {
  let end = text.indexOf('"', open + 1);
  while (end !== -1 && escaped(text, end)) end = text.indexOf('"', end + 1);
  return end;
}

/** Whether the character at `at` follows an odd run of backslashes. */
function escaped(text: string, at: number): boolean {
  let backslashes = 0;
  for (let i = at - 1; i >= 0 && text.charCodeAt(i) === 92 /* \ */; i--) backslashes++;
  return backslashes % 2 === 1;
}
