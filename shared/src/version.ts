// Model versions are dot-separated non-negative integers ("1", "1.2", "2.0.13");
// ordering is numeric per part, missing parts count as 0 [EF-4.6].

const VERSION_RE = /^\d{1,9}(\.\d{1,9}){0,3}$/

export function isValidVersion(v: string): boolean {
  return VERSION_RE.test(v)
}

export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number)
  const pb = b.split('.').map(Number)
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0)
    if (d !== 0) return d < 0 ? -1 : 1
  }
  return 0
}
