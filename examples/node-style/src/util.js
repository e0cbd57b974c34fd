export const pad = (s, n) => s.padStart(n);
