// Types for faults.mjs.
export function canMount(): boolean
export function mountTmpfs(dir: string, bytes: number): () => void
export function freeBytes(dir: string): number
export function fillDisk(file: string, leaveBytes?: number): number
