// Pieces every view uses: the loading/error line, a stat card, a state pill,
// an action's outcome, and reading a form's fields by name.
import type { ComponentChildren } from 'preact'
import type { Loaded, Outcome } from '../hooks'

/** Renders `body(value)` once loaded; the error (with its EF_ERR_* code) otherwise. */
export function Load<T>(props: { data: Loaded<T>; children: (value: T) => ComponentChildren }) {
  const { value, error } = props.data
  if (error !== undefined && value === undefined) return <p class="bad">{error}</p>
  if (value === undefined) return <p>loading…</p>
  return <>{props.children(value)}</>
}

export function Stat(props: { label: string; id?: string; class?: string; children: ComponentChildren }) {
  return (
    <div class="card stat">
      {props.label}
      <b id={props.id} class={props.class}>
        {props.children}
      </b>
    </div>
  )
}

/** A state as a coloured pill: the class is the state, the text `label` when given (a state with its detail). */
export const StatePill = (props: { state: string; label?: string }) => (
  <span class={`state ${props.state}`}>{props.label ?? props.state}</span>
)

export function Result(props: { outcome: Outcome | undefined; id: string }) {
  const outcome = props.outcome
  return (
    <span id={props.id} class={outcome?.failed ? 'bad' : 'good'}>
      {outcome?.text ?? ''}
    </span>
  )
}

/** The string value of field `name` of a form (inputs, selects), trimmed. */
export function field(form: HTMLFormElement, name: string): string {
  const element = form.elements.namedItem(name) as HTMLInputElement | HTMLSelectElement | null
  return element ? element.value.trim() : ''
}

export function checked(form: HTMLFormElement, name: string): boolean {
  return (form.elements.namedItem(name) as HTMLInputElement | null)?.checked ?? false
}

/** A submit handler that keeps the page and hands the form over. */
export const onSubmit = (handle: (form: HTMLFormElement) => void) => (event: Event) => {
  event.preventDefault()
  handle(event.currentTarget as HTMLFormElement)
}
