// Deterministic test bytes, generated the same way in Node (to hash the
// source) and in the page (to give Uppy its Blob), so no file has to be
// shipped to the browser. mulberry32: tiny, fast, any 32-bit seed is fine.
export function testBytes(seed, size) {
  const out = new Uint8Array(size);
  let state = seed >>> 0;
  let word = 0;
  for (let i = 0; i < size; i++) {
    if ((i & 3) === 0) {
      state = (state + 0x6d2b79f5) >>> 0;
      let t = Math.imul(state ^ (state >>> 15), state | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      word = (t ^ (t >>> 14)) >>> 0;
    }
    out[i] = word & 0xff;
    word >>>= 8;
  }
  return out;
}
