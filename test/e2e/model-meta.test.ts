// Model bundles that carry their meaning [EF-3.7, EF-3.8, EF-7.1.3], with a
// real hub and agent process: `model add --meta` checks the file against the
// model (bad ones refused with EF_ERR_MODEL_META_INVALID, nothing registered),
// the signed manifest carries it, the agent's local API normalises raw inputs
// and returns labelled results that match a direct ONNX Runtime run, and a
// build that needs a newer agent is refused before anything is downloaded.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as ort from 'onnxruntime-node'
import { startHub, startFleet, api, cli, waitFor, wakeInput, MODELS } from '../support/fleet.mjs'
import { batchModel } from '../support/rollout-models.mjs'

type Agent = Awaited<ReturnType<typeof startFleet>>[number]
interface Scored {
  label: string
  index: number
  score: number
}

const LABELS = ['cat', 'dog', 'bird', 'fish', 'frog', 'horse', 'ship', 'truck']
const MEAN = Array.from({ length: 64 }, (_, c) => 0.3 + c / 256)
const STD = Array.from({ length: 64 }, (_, c) => 0.2 + (c % 7) / 20)
const SCALE = 1 / 255

describe('model meta: labels, normalisation, post-processing and minimum versions', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'ef-meta-'))
  let hub: Awaited<ReturnType<typeof startHub>>
  let agents: Agent[]
  let classifier: string

  const file = (name: string, content: string | Uint8Array) => {
    const path = join(tmp, name)
    writeFileSync(path, content)
    return path
  }
  const add = (model: string, name: string, version: string, meta: string, extra: string[] = []) =>
    cli([
      'model',
      'add',
      model,
      '--name',
      name,
      '--version',
      version,
      '--meta',
      meta,
      ...extra,
      '--hub',
      hub.httpUrl,
      '--json',
    ])
  const deploy = (ref: string) =>
    cli(['deploy', ref, '--target', 'device=meta-1', '--wait', '--timeout', '60', '--hub', hub.httpUrl, '--json'])

  beforeAll(async () => {
    hub = await startHub({ dataDir: join(tmp, 'hub') })
    agents = await startFleet(hub, [{ id: 'meta-1', profile: 'industrial-x86' }], { tmp })
    classifier = file('cls.onnx', await batchModel({ seed: 3 }))
  })

  afterAll(async () => {
    await Promise.all((agents ?? []).map((a) => a.stop()))
    await hub?.stop()
    rmSync(tmp, { recursive: true, force: true })
  })

  it('refuses meta that is not JSON, not the schema, or not the model: EF_ERR_MODEL_META_INVALID, nothing registered', async () => {
    const good = { inputs: { x: { layout: 'NC' } }, outputs: { y: { labels: LABELS } } }
    const bad: [string, string, RegExp][] = [
      ['not json', '{labels: [', /JSON|Unexpected/],
      ['unknown field', JSON.stringify({ outputs: { y: { labelz: LABELS } } }), /labelz|additional/i],
      ['a label short', JSON.stringify({ outputs: { y: { labels: LABELS.slice(1) } } }), /7 labels.*8/],
      ['unknown output', JSON.stringify({ outputs: { logits: { labels: LABELS } } }), /outputs\.logits.*has y/],
      ['layout rank', JSON.stringify({ ...good, inputs: { x: { layout: 'NCHW' } } }), /4 axes.*2/],
      [
        'channel count',
        JSON.stringify({ inputs: { x: { layout: 'NC', normalize: { mean: [0, 0, 0], std: [1, 1, 1] } } } }),
        /3 values.*64/,
      ],
      [
        'topK',
        JSON.stringify({ outputs: { y: { postprocess: { activation: 'softmax', topK: 9 } } } }),
        /topK 9.*8 classes/,
      ],
      ['requires', JSON.stringify({ requires: { agent: 'latest' } }), /requires\/agent/],
    ]
    for (const [what, text, detail] of bad) {
      const r = await add(classifier, 'cls', '1.0.0', file(`bad-${what.replace(/ /g, '-')}.json`, text))
      expect(r.code, `${what}: ${r.out}`).toBe(1)
      // With --json the error is the JSON on stdout.
      const { error } = JSON.parse(r.out) as { error: { code: string; message: string } }
      expect(error.code, what).toBe('EF_ERR_MODEL_META_INVALID')
      expect(error.message, what).toMatch(detail)
    }
    await expect(api(hub.httpUrl, 'GET', '/api/v1/models/cls/versions/1.0.0')).rejects.toMatchObject({ status: 404 })
  })

  it('normalises raw inputs and labels the outputs on the device, as a direct ORT run would', async () => {
    const meta = {
      inputs: { x: { layout: 'NC', normalize: { scale: SCALE, mean: MEAN, std: STD }, units: 'raw counts' } },
      outputs: { y: { labels: LABELS, postprocess: { activation: 'softmax', topK: 3 } } },
    }
    const added = await add(classifier, 'cls', '1.0.0', file('cls-meta.json', JSON.stringify(meta)), [
      '--precision',
      'fp32',
    ])
    expect(added.code, added.err).toBe(0)
    const deployed = await deploy('cls@1.0.0')
    expect(deployed.code, deployed.err + deployed.out).toBe(0)

    const raw = Array.from({ length: 2 * 64 }, (_, i) => (i * 37) % 256)
    const url = `${agents[0].url}/v1/models/cls/infer`
    const body = { inputs: { x: { type: 'uint8', dims: [2, 64], data: raw } } }
    const answer = await api(url, 'POST', '?preprocess=1&postprocess=1', body)

    // The same computation by hand: normalise, run the float model directly, softmax, best three.
    const normalised = Float32Array.from(raw, (v, i) => (v * SCALE - MEAN[i % 64]) / STD[i % 64])
    const session = await ort.InferenceSession.create(classifier)
    const direct = (await session.run({ x: new ort.Tensor('float32', normalised, [2, 64]) })).y.data as Float32Array
    await session.release()
    for (let row = 0; row < 2; row++) {
      const logits = Array.from(direct.subarray(row * 8, row * 8 + 8))
      const exps = logits.map((v) => Math.exp(v - Math.max(...logits)))
      const sum = exps.reduce((a, b) => a + b, 0)
      const want = exps
        .map((e, index) => ({ label: LABELS[index], index, score: e / sum }))
        .sort((a, b) => b.score - a.score)
        .slice(0, 3)
      const got = answer.results.y.rows[row] as Scored[]
      expect(got.map((s) => s.label)).toEqual(want.map((s) => s.label))
      got.forEach((s, k) => expect(s.score).toBeCloseTo(want[k].score, 5))
    }
    // The raw outputs travel too, and a plain request gets no results.
    expect(answer.outputs.y.dims).toEqual([2, 8])
    const plain = await api(url, 'POST', '', {
      inputs: { x: { type: 'float32', dims: [2, 64], data: Array.from(normalised) } },
    })
    expect(plain.results).toBeUndefined()
    expect(plain.outputs.y.data[0]).toBeCloseTo(direct[0], 5)
    // Raw uint8 without ?preprocess=1 is not what the model takes; an unknown query parameter is refused.
    await expect(api(url, 'POST', '', body)).rejects.toMatchObject({
      body: { error: { code: 'EF_ERR_INFER_BAD_TENSOR' } },
    })
    await expect(api(url, 'POST', '?postprocesss=1', body)).rejects.toMatchObject({
      body: { error: { code: 'EF_ERR_HTTP_BAD_REQUEST' } },
    })
  })

  it('a wake-word head with a threshold: one labelled score above it, none below', async () => {
    const meta = {
      outputs: { '39': { labels: ['hello deepa'], postprocess: { activation: 'none', threshold: 0.5 } } },
      requires: { agent: '0.1.0', ort: '1.30' },
    }
    const added = await add(MODELS.wakeHello, 'wake', '1.0.0', file('wake-meta.json', JSON.stringify(meta)), [
      '--precision',
      'fp32',
    ])
    expect(added.code, added.err).toBe(0)
    const deployed = await deploy('wake@1.0.0')
    expect(deployed.code, deployed.err + deployed.out).toBe(0)
    const url = `${agents[0].url}/v1/models/wake/infer`
    for (let seed = 1; seed <= 6; seed++) {
      const r = await api(url, 'POST', '?postprocess=1', { inputs: wakeInput(seed) })
      const score = r.outputs['39'].data[0] as number
      const rows = r.results['39'].rows as Scored[][]
      expect(rows).toHaveLength(1)
      expect(rows[0]).toEqual(score >= 0.5 ? [{ label: 'hello deepa', index: 0, score }] : [])
    }
  })

  it('an agent older than the build requires refuses it before downloading: EF_ERR_AGENT_TOO_OLD [EF-3.8]', async () => {
    const meta = { outputs: { '39': { labels: ['hello deepa'] } }, requires: { agent: '99.0' } }
    const added = await add(MODELS.wakeNamaste, 'wake', '2.0.0', file('wake2-meta.json', JSON.stringify(meta)), [
      '--precision',
      'fp32',
    ])
    expect(added.code, added.err).toBe(0)
    const refused = await deploy('wake@2.0.0')
    expect(refused.code).not.toBe(0)
    const view = JSON.parse(refused.out)
    expect(view.devices[0]).toMatchObject({ deviceId: 'meta-1', state: 'rejected', code: 'EF_ERR_AGENT_TOO_OLD' })
    const events = (await api(hub.httpUrl, 'GET', '/api/v1/devices/meta-1')).events as {
      kind: string
      version?: string
    }[]
    const of2 = await waitFor(() => {
      const e = events.filter((x) => x.version === '2.0.0')
      return e.length ? e : undefined
    })
    expect(of2.map((e) => e.kind)).toEqual(['rejected'])
    expect(
      (await api(agents[0].url, 'GET', '/v1/models')).items.find((m: { name: string }) => m.name === 'wake').version,
    ).toBe('1.0.0')
  })
})
