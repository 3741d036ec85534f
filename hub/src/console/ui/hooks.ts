// Data loading for the views: a view names what it needs, gets it back with
// the last error, and reloads on its own every REFRESH_MS (a live page) and
// whenever its inputs change. Forms are uncontrolled inputs, so a refresh
// redraws the data without touching what the operator is typing.
import { createContext } from 'preact'
import { useContext, useEffect, useState } from 'preact/hooks'

export const REFRESH_MS = 2000
/** Increments every REFRESH_MS while signed in; each view reloads on it. */
export const Tick = createContext(0)

export interface Loaded<T> {
  value: T | undefined
  error: string | undefined
  reload: () => void
}

export function useLoad<T>(load: () => Promise<T>, inputs: unknown[]): Loaded<T> {
  const tick = useContext(Tick)
  const [value, setValue] = useState<T | undefined>(undefined)
  const [error, setError] = useState<string | undefined>(undefined)
  const [nonce, setNonce] = useState(0)
  useEffect(() => {
    let current = true
    load().then(
      (v) => {
        if (!current) return
        setValue(v)
        setError(undefined)
      },
      (err: unknown) => {
        if (current) setError(err instanceof Error ? err.message : String(err))
      },
    )
    return () => {
      current = false
    }
    // inputs: the caller's dependency list, as in useEffect.
  }, [tick, nonce, ...inputs])
  return { value, error, reload: () => setNonce((n) => n + 1) }
}

/** The outcome of an action button or form: a message, and whether it failed. */
export interface Outcome {
  text: string
  failed: boolean
}

export function useAction(): [Outcome | undefined, (run: () => Promise<string>) => void] {
  const [outcome, setOutcome] = useState<Outcome | undefined>(undefined)
  const act = (run: () => Promise<string>) => {
    run().then(
      (text) => setOutcome({ text, failed: false }),
      (err: unknown) => setOutcome({ text: err instanceof Error ? err.message : String(err), failed: true }),
    )
  }
  return [outcome, act]
}
