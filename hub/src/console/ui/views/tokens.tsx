// API tokens [EF-8.10]: an admin creates one (viewer, operator or admin, with
// an optional lifetime; its plaintext is shown once), lists them with last use
// and expiry, and revokes one.
import { useState } from 'preact/hooks'
import { api, enc, session } from '../api'
import { when } from '../format'
import { useAction, useLoad } from '../hooks'
import type { Token } from '../types'
import { Load, Result, field, onSubmit } from './common'

export function TokensView() {
  const list = useLoad(() => api<{ items: Token[] }>('GET', '/api/v1/tokens'), [])
  const [created, setCreated] = useState<{ name: string; token: string } | undefined>(undefined)
  const [outcome, act] = useAction()
  const create = onSubmit((form) =>
    act(async () => {
      const days = Number(field(form, 'days') || 0)
      const body = {
        name: field(form, 'name'),
        role: field(form, 'role'),
        ...(days > 0 ? { expiresInSeconds: Math.round(days * 86_400) } : {}),
      }
      const made = await api<{ name: string; token: string }>('POST', '/api/v1/tokens', body)
      setCreated(made)
      form.reset()
      list.reload()
      return ''
    }),
  )
  const revoke = (id: string) =>
    act(async () => {
      await api('DELETE', `/api/v1/tokens/${enc(id)}`)
      list.reload()
      return `revoked ${id}`
    })
  if (session.role !== 'admin') return <p>Tokens are managed with an admin token.</p>
  return (
    <>
      <h2>New API token</h2>
      <form class="inline card" id="token-create" onSubmit={create}>
        <label>
          name
          <input name="name" size={16} required />
        </label>
        <label>
          role
          <select name="role">
            <option>viewer</option>
            <option>operator</option>
            <option>admin</option>
          </select>
        </label>
        <label>
          expires after (days)
          <input name="days" size={4} placeholder="never" />
        </label>
        <button class="primary" id="token-create-btn">
          Create token
        </button>
        <Result id="token-result" outcome={outcome} />
      </form>
      {created ? (
        <p class="card" id="token-created">
          Token for {created.name} (shown once): <code id="token-plaintext">{created.token}</code>
        </p>
      ) : null}
      <h2>Tokens</h2>
      <Load data={list}>
        {(tokens) => (
          <table id="tokens">
            <thead>
              <tr>
                <th>name</th>
                <th>role</th>
                <th>created</th>
                <th>last used</th>
                <th>expires</th>
                <th>state</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {tokens.items.map((token) => (
                <tr key={token.id} data-token={token.id} data-name={token.name}>
                  <td>{token.name}</td>
                  <td>{token.role}</td>
                  <td>{when(token.createdAt)}</td>
                  <td>{when(token.lastUsedAt)}</td>
                  <td>{token.expiresAt === null ? 'never' : when(token.expiresAt)}</td>
                  <td class={token.revokedAt ? 'bad' : 'good'}>
                    {token.revokedAt ? `revoked ${when(token.revokedAt)}` : 'active'}
                  </td>
                  <td>
                    {token.revokedAt ? null : (
                      <button class="danger" data-revoke={token.id} onClick={() => revoke(token.id)}>
                        Revoke
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Load>
    </>
  )
}
