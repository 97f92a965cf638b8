/** Copies a child process's output into a log file as it arrives. */

/**
 * Appends what `stream` yields to the file at `path` as it comes, so the file can be read
 * while the process runs (a file's `writable` buffers until the stream ends, and two streams
 * cannot share one writer).
 */
export async function appendTo(path: string, stream: ReadableStream<Uint8Array>): Promise<void> {
  using file = await Deno.open(path, { create: true, append: true, write: true });
  for await (let chunk of stream) {
    while (chunk.byteLength > 0) chunk = chunk.subarray(await file.write(chunk));
  }
}
