// Bad input, each with its catalogue code, and nothing half-written at --out;
// the CLI's happy path; compile in a worker thread.
import { existsSync, mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { compile, writeNpy } from '../../src/compiler/index.js'
import { compileCli } from '../../src/compiler/cli.js'
import { encodeModel, decodeModel } from '../../src/compiler/onnx/proto.js'
import { mlpModel, convModel } from '../fixtures/compiler/tiny.js'
import { testProfile } from '../fixtures/compiler/models.js'

const dir = mkdtempSync(join(tmpdir(), 'ef-compile-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const sink = () => {
  let text = ''
  return {
    stream: { write: (s: string) => ((text += s), true), isTTY: false } as unknown as NodeJS.WriteStream,
    text: () => text,
  }
}

function file(name: string, data: Uint8Array | string): string {
  const p = join(dir, name)
  writeFileSync(p, data)
  return p
}

const profileFile = file('profile.json', JSON.stringify(testProfile({ id: 'tiny-x86' })))

async function cli(args: string[]) {
  const out = sink()
  const err = sink()
  const code = await compileCli(['compile', ...args], { stdout: out.stream, stderr: err.stream })
  return { code, stdout: out.text(), stderr: err.text() }
}

describe('bad input gets its code', () => {
  const profile = testProfile()

  it('not an ONNX file → EF_ERR_MODEL_INVALID', async () => {
    await expect(compile(new TextEncoder().encode('#!/bin/sh\necho not a model\n'), profile)).rejects.toMatchObject({
      code: 'EF_ERR_MODEL_INVALID',
    })
  })

  it('a truncated model → EF_ERR_MODEL_INVALID', async () => {
    const m = mlpModel()
    await expect(compile(m.subarray(0, m.byteLength - 300), profile)).rejects.toMatchObject({
      code: 'EF_ERR_MODEL_INVALID',
    })
  })

  it("an opset outside the profile's range → EF_ERR_OPSET_OUT_OF_RANGE", async () => {
    await expect(compile(mlpModel(), testProfile({ opset: { min: 7, max: 11 } }))).rejects.toMatchObject({
      code: 'EF_ERR_OPSET_OUT_OF_RANGE',
      message: expect.stringMatching(/opset 13 is outside/),
    })
  })

  it('a model ORT cannot load → EF_ERR_MODEL_INVALID', async () => {
    const m = decodeModel(mlpModel())
    m.graph!.node[1].op_type = 'NoSuchOperator'
    await expect(compile(encodeModel(m), profile)).rejects.toMatchObject({ code: 'EF_ERR_MODEL_INVALID' })
  })

  it('a precision the profile does not allow → EF_ERR_BUILD_FAILED', async () => {
    await expect(
      compile(mlpModel(), testProfile({ precisions: ['fp32'] }), { precision: 'int8-static' }),
    ).rejects.toMatchObject({ code: 'EF_ERR_BUILD_FAILED' })
  })

  it('no candidate within the accuracy budget → EF_ERR_BUILD_OVER_BUDGET naming each reason', async () => {
    const strict = testProfile({ precisions: ['int8-weight'], accuracyBudget: { minCosine: 0.9999999 } })
    await expect(compile(convModel(), strict, { timing: false })).rejects.toMatchObject({
      code: 'EF_ERR_BUILD_OVER_BUDGET',
      message: expect.stringMatching(/int8-weight: cosine 0\.\d{6} < 0\.9999999/),
    })
  })

  it('a latency budget no build meets never ships (issue: 1e-6 ms shipped with verdict pass) → EF_ERR_BUILD_OVER_BUDGET', async () => {
    const tight = testProfile({ precisions: ['fp32', 'int8-dynamic'], latencyBudgetMs: 1e-6, speedFactor: 2 })
    const err = await compile(mlpModel(), tight, { timing: { minRounds: 5, budgetMs: 100 } }).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'EF_ERR_BUILD_OVER_BUDGET' })
    const msg = (err as Error).message
    for (const p of ['fp32', 'int8-dynamic'])
      expect(msg).toMatch(
        new RegExp(
          `${p}: estimated latency [\\d.]+ ms exceeds the budget of 0\\.000001 ms \\(hub [\\d.]+ ms at 1 thread × 2\\.000: speed factor 2`,
        ),
      )
  })

  it('a RAM budget below the measured peak RSS → EF_ERR_BUILD_OVER_BUDGET with the measured figure', async () => {
    const small = testProfile({ precisions: ['fp32'], ramMb: 64, storageBudgetMb: 64 })
    await expect(compile(mlpModel(), small, { timing: false })).rejects.toMatchObject({
      code: 'EF_ERR_BUILD_OVER_BUDGET',
      message: expect.stringMatching(
        /fp32: peak RSS \d+ MiB \(Node \+ ONNX Runtime \d+ MiB before the session\) exceeds the RAM budget of 64 MiB/,
      ),
    })
  })

  it('calibration tensors of the wrong shape or type → EF_ERR_CALIBRATION_INVALID', async () => {
    const shape = join(dir, 'cal-shape')
    mkdirSync(join(shape, 'x'), { recursive: true })
    writeFileSync(
      join(shape, 'x', '0.npy'),
      writeNpy({ type: 'float32', dims: [1, 3, 8, 8], data: new Float32Array(192) }),
    )
    await expect(
      compile(convModel(), profile, { precision: 'int8-static', calibrationDir: shape }),
    ).rejects.toMatchObject({ code: 'EF_ERR_CALIBRATION_INVALID', message: expect.stringMatching(/axis 2/) })
    const type = join(dir, 'cal-type')
    mkdirSync(type)
    writeFileSync(
      join(type, 'x_0.npy'),
      writeNpy({ type: 'int64', dims: [1, 3, 16, 16], data: new BigInt64Array(768) }),
    )
    await expect(
      compile(convModel(), profile, { precision: 'int8-static', calibrationDir: type }),
    ).rejects.toMatchObject({ code: 'EF_ERR_CALIBRATION_INVALID', message: expect.stringMatching(/type int64/) })
  })

  it('CLI: unknown profile id → EF_ERR_PROFILE_UNKNOWN, exit 1, nothing at --out', async () => {
    const out = join(dir, 'none.onnx')
    const result = await cli([
      file('m.onnx', mlpModel()),
      '--profile',
      'no-such-device',
      '--profiles-dir',
      dir,
      '--out',
      out,
      '--report',
      join(dir, 'none.json'),
      '--json',
    ])
    expect(result.code).toBe(1)
    expect(JSON.parse(result.stdout)).toMatchObject({ ok: false, code: 'EF_ERR_PROFILE_UNKNOWN' })
    expect(existsSync(out)).toBe(false)
  })

  it('CLI: a failing build leaves no file and no temp file behind', async () => {
    const out = join(dir, 'bad.onnx')
    const result = await cli([
      file('bad-model.onnx', 'garbage'),
      '--profile',
      profileFile,
      '--out',
      out,
      '--report',
      join(dir, 'bad.json'),
    ])
    expect(result.code).toBe(1)
    expect(result.stderr).toMatch(/EF_ERR_MODEL_INVALID/)
    expect(existsSync(out)).toBe(false)
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([])
  })

  it('CLI: usage errors exit 2', async () => {
    expect((await cli(['--out', 'x'])).code).toBe(2)
    expect((await cli(['m.onnx', '--profile', 'p', '--out', 'o', '--report', 'r', '--precision', 'int4'])).code).toBe(2)
  })
})

describe('CLI and worker', () => {
  it('compiles with a profile id from --profiles-dir, writes the build and a JSON report', async () => {
    const profiles = join(dir, 'profiles')
    mkdirSync(profiles)
    writeFileSync(
      join(profiles, 'some-file-name.json'),
      JSON.stringify(testProfile({ id: 'tiny-x86', precisions: ['fp32', 'int8-dynamic'] })),
    )
    const out = join(dir, 'mlp.int8.onnx')
    const rep = join(dir, 'mlp.report.json')
    const result = await cli([
      file('mlp.onnx', mlpModel()),
      '--profile',
      'tiny-x86',
      '--profiles-dir',
      profiles,
      '--precision',
      'int8-dynamic',
      '--out',
      out,
      '--report',
      rep,
      '--json',
    ])
    expect(result.code, result.stderr).toBe(0)
    expect(JSON.parse(result.stdout)).toMatchObject({ ok: true, precision: 'int8-dynamic' })
    const report = JSON.parse(readFileSync(rep, 'utf8'))
    expect(report).toMatchObject({ precision: 'int8-dynamic', verdict: 'pass', profile: 'tiny-x86' })
    expect(report.plan.MatMul['int8-dynamic']).toBe(1)
    expect(decodeModel(readFileSync(out)).graph!.node.some((n) => n.op_type === 'DynamicQuantizeMatMul')).toBe(true)
    expect(result.stderr).toMatch(/build/)
  })

  it("auto plan: report lists every candidate and why the pick was made, following the profile's preference", async () => {
    const compiled = await compile(convModel(), testProfile(), {
      calibrationSamples: 4,
      timing: { warmup: 2, minRounds: 12, maxRounds: 40, budgetMs: 300 },
    })
    const cands = compiled.report.candidates as {
      precision: string
      verdict: string
      latencyMs?: number
      ramPeakMb?: number
    }[]
    expect(cands.map((c) => c.precision)).toEqual(['fp32', 'fp16', 'int8-dynamic', 'int8-weight', 'int8-static'])
    const passing = cands.filter((c) => c.verdict === 'pass')
    for (const c of passing) expect(c.ramPeakMb).toBeGreaterThan(30)
    const decision = compiled.report.decision as {
      rule: string
      anchor: string
      why: string
      comparisons: { precision: string; latencyRatio: number; outcome: string }[]
    }
    // fp32 is the profile's first precision and passes: it is the anchor, and only a build more
    // than 10 % faster in most paired rounds may replace it.
    expect(decision.anchor).toBe('fp32')
    expect(decision.comparisons).toHaveLength(passing.length - 1)
    if (compiled.precision === 'fp32') expect(decision.rule).toBe('profile preference')
    else {
      expect(decision.rule).toBe('faster past margin')
      const won = decision.comparisons.find((c) => c.precision === compiled.precision)!
      expect(won.latencyRatio).toBeLessThanOrEqual(0.9)
    }
    expect((compiled.report.notes as string[]).at(-1)).toBe(`chosen: ${decision.why}`)
    expect(compiled.report.warnings).toEqual([expect.stringMatching(/no calibration data/)])
    expect(JSON.parse(JSON.stringify(compiled.report))).toEqual(compiled.report)
  })

  it("keeps the previous version's precision when it passes, and says so", async () => {
    const three = testProfile({ precisions: ['fp32', 'int8-dynamic', 'int8-weight'] })
    const r = await compile(mlpModel(), three, { previousPrecision: 'int8-weight', timing: false, measureRam: false })
    expect(r.precision).toBe('int8-weight')
    expect(r.report.decision).toMatchObject({ rule: 'previous precision kept', previous: 'int8-weight' })
    const gone = await compile(mlpModel(), testProfile({ precisions: ['fp32', 'int8-dynamic'] }), {
      previousPrecision: 'int8-weight',
      timing: false,
      measureRam: false,
    })
    expect(gone.precision).toBe('fp32')
    expect((gone.report.decision as { why: string }).why).toMatch(
      /previous precision int8-weight not kept \(the profile no longer allows it\)/,
    )
  })

  const dist = fileURLToPath(new URL('../../dist/compiler/index.js', import.meta.url))
  it.skipIf(!existsSync(dist))('compileInWorker runs compile off the main thread (built dist/)', async () => {
    const mod = (await import(dist)) as typeof import('../../src/compiler/index.js')
    const phases: string[] = []
    const r = await mod.compileInWorker(mlpModel(), testProfile(), {
      precision: 'int8-dynamic',
      timing: false,
      onProgress: (p) => phases.push(p.phase),
    })
    expect(r.precision).toBe('int8-dynamic')
    expect(r.bytes).toBeInstanceOf(Uint8Array)
    expect(phases).toContain('done')
    await expect(mod.compileInWorker(new Uint8Array([1, 2, 3]), testProfile())).rejects.toMatchObject({
      code: 'EF_ERR_MODEL_INVALID',
    })
  })
})
