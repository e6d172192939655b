/**
 * The deepest nesting of objects and arrays in a JSON text, or `limit + 1` as soon as it is known to be deeper.
 *
 * Written by hand because the check must happen before `JSON.parse` builds (and recursion walks) the deep structure,
 * and no JSON library offers a depth limit on the raw text. A single pass that skips string contents: brackets inside
 * strings do not count. The text is not validated here; the parser that follows does that.
 */
export function jsonDepth(text: string, limit: number): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (inString) {
      if (code === 92 /* \ */) i++;
      else if (code === 34 /* " */) inString = false;
      continue;
    }
    if (code === 34) inString = true;
    else if (code === 123 /* { */ || code === 91 /* [ */) {
      depth++;
      if (depth > deepest) {
        deepest = depth;
        if (deepest > limit) return deepest;
      }
    } else if (code === 125 /* } */ || code === 93 /* ] */) depth--;
  }
  return deepest;
}
