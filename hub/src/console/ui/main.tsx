// The console's entry: sign-in with an API token, the header and navigation,
// hash routes to one view each, and the refresh tick every view reloads on.
import { render } from 'preact'
import { useEffect, useState } from 'preact/hooks'
import { api, remember, session, signOut } from './api'
import { REFRESH_MS, Tick } from './hooks'
import { ROUTES, NAV, viewOf } from './router'

function SignIn(props: { onSignedIn: () => void }) {
  const [error, setError] = useState('')
  const submit = (event: Event) => {
    event.preventDefault()
    const input = (event.currentTarget as HTMLFormElement).elements.namedItem('token') as HTMLInputElement
    session.token = input.value.trim()
    api<unknown>('GET', '/api/v1/whoami').then(
      () => {
        remember(input.value.trim())
        props.onSignedIn()
      },
      (err: unknown) => {
        session.token = null
        setError(err instanceof Error ? err.message : String(err))
      },
    )
  }
  return (
    <form id="signin" class="card signin" onSubmit={submit}>
      <h2>Sign in</h2>
      <p>
        Paste an API token (the hub writes the first admin token to <code>&lt;data&gt;/admin-token</code>).
      </p>
      <input id="token" name="token" type="password" autocomplete="off" placeholder="ef_…" size={50} />
      <button type="submit">Sign in</button>
      <p id="signin-error" class="bad">
        {error}
      </p>
    </form>
  )
}

function useHash(): string[] {
  const [hash, setHash] = useState(location.hash)
  useEffect(() => {
    const onChange = () => setHash(location.hash)
    addEventListener('hashchange', onChange)
    return () => removeEventListener('hashchange', onChange)
  }, [])
  return (hash || '#/fleet').slice(2).split('/').map(decodeURIComponent)
}

function Shell() {
  const [name, ...args] = useHash()
  const [tick, setTick] = useState(0)
  useEffect(() => {
    const timer = setInterval(() => setTick((t) => t + 1), REFRESH_MS)
    return () => clearInterval(timer)
  }, [])
  const view = viewOf(name)
  const View = ROUTES[view].view
  useEffect(() => {
    document.body.dataset.view = view
  }, [view])
  return (
    <Tick.Provider value={tick}>
      <header>
        <h1>EdgeFleet</h1>
        <nav id="nav">
          {NAV.map((key) => (
            <a key={key} href={`#/${key}`} class={ROUTES[view].nav === key ? 'active' : ''}>
              {ROUTES[key].title}
            </a>
          ))}
        </nav>
        <span id="who">
          {session.name} ({session.role}) ·{' '}
          <a
            href="#"
            id="signout"
            onClick={(event) => {
              event.preventDefault()
              signOut()
            }}
          >
            sign out
          </a>
        </span>
        <span id="updated">updated {new Date().toLocaleTimeString()}</span>
      </header>
      <main id="main">
        <View args={args} key={view} />
      </main>
    </Tick.Provider>
  )
}

function App() {
  const [signedIn, setSignedIn] = useState(false)
  const start = () => {
    api<{ name: string; role: typeof session.role }>('GET', '/api/v1/whoami').then(
      (who) => {
        Object.assign(session, { name: who.name, role: who.role, signedIn: true })
        setSignedIn(true)
      },
      () => {
        session.token = null
      },
    )
  }
  useEffect(() => {
    if (session.token) start()
  }, [])
  if (signedIn) return <Shell />
  return (
    <>
      <header>
        <h1>EdgeFleet</h1>
      </header>
      <main id="main">
        <SignIn onSignedIn={start} />
      </main>
    </>
  )
}

const root = document.getElementById('app')
if (root) render(<App />, root)
