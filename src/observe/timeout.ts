/**
 * Resolves with the promise's value, or with undefined when it rejects or takes longer than `ms`: for figures asked of
 * a broker while answering a scrape or a page, where a slow broker must not hold the answer.
 */
export async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([promise.catch(() => undefined), late]);
  } finally {
    clearTimeout(timer);
  }
}
