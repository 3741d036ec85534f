// `edgefleet compile` through main(): the model options it shares with
// `model add` (--shape, --value, --output, --precision), and a model whose
// symbolic dim cannot be guessed → EF_ERR_MODEL_SHAPE_REQUIRED naming --shape.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { runCli } from '../fixtures/cli.js'
import { compile } from '../../src/compiler/index.js'
import { symbolicAddModel } from '../fixtures/compiler/symbolic.js'
import { testProfile } from '../fixtures/compiler/models.js'

const dir = mkdtempSync(join(tmpdir(), 'ef-cli-compile-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const model = join(dir, 'symbolic.onnx')
writeFileSync(model, symbolicAddModel())
const profile = join(dir, 'profile.json')
writeFileSync(profile, JSON.stringify(testProfile({ id: 'tiny-x86', precisions: ['fp32', 'int8-dynamic'] })))

function compileArgs(name: string, ...flags: string[]): string[] {
  return [
    'compile',
    model,
    '--profile',
    profile,
    '--out',
    join(dir, `${name}.onnx`),
    '--report',
    join(dir, `${name}.json`),
    '--precision',
    'fp32',
    '--json',
    ...flags,
  ]
}

describe('compile and symbolic dims', () => {
  it('without --shape: EF_ERR_MODEL_SHAPE_REQUIRED naming the input and --shape, exit 1, nothing written', async () => {
    const r = await runCli(compileArgs('guessed'))
    expect(r.code).toBe(1)
    const body = JSON.parse(r.out) as { ok: boolean; code: string; message: string }
    expect(body).toMatchObject({ ok: false, code: 'EF_ERR_MODEL_SHAPE_REQUIRED' })
    expect(body.message).toContain('x [1, T]')
    expect(body.message).toContain('--shape NAME=d,d')
    expect(r.err).toContain('EF_ERR_MODEL_SHAPE_REQUIRED')
    expect(existsSync(join(dir, 'guessed.onnx'))).toBe(false)
  })

  it('the compiler itself answers the code (so hub builds record it too)', async () => {
    await expect(compile(symbolicAddModel(), testProfile(), { timing: false })).rejects.toMatchObject({
      code: 'EF_ERR_MODEL_SHAPE_REQUIRED',
    })
  })

  it('with --shape x=1,10 it builds; --output puts the meaning in the report', async () => {
    const r = await runCli(compileArgs('shaped', '--shape', 'x=1,10', '--output', 'y=scores'))
    expect(r.code, r.err).toBe(0)
    expect(JSON.parse(r.out)).toMatchObject({ ok: true, precision: 'fp32' })
    const report = JSON.parse(readFileSync(join(dir, 'shaped.json'), 'utf8'))
    expect(report).toMatchObject({ verdict: 'pass', semantics: [{ name: 'y', kind: 'scores' }] })
    expect(readFileSync(join(dir, 'shaped.onnx')).byteLength).toBeGreaterThan(0)
  })

  it('a shape of the wrong rank is the model’s error, not a guess', async () => {
    const r = await runCli(compileArgs('rank', '--shape', 'x=10'))
    expect(r.code).toBe(1)
    expect(JSON.parse(r.out).code).toBe('EF_ERR_MODEL_INVALID')
  })

  it('a given shape the model cannot run (x=1,7 against b[1,10]): EF_ERR_MODEL_RUN_FAILED listing what was fed', async () => {
    const r = await runCli(compileArgs('wrongsize', '--shape', 'x=1,7'))
    expect(r.code).toBe(1)
    const body = JSON.parse(r.out) as { code: string; message: string }
    expect(body.code).toBe('EF_ERR_MODEL_RUN_FAILED')
    expect(body.message).toContain('x [1,7]')
    expect(body.message).toMatch(/Check each --shape and --value/)
    expect(body.message).toMatch(/ONNX Runtime said: /)
    expect(existsSync(join(dir, 'wrongsize.onnx'))).toBe(false)
  })

  it('--output naming an output the model lacks: EF_ERR_MODEL_INVALID', async () => {
    const r = await runCli(compileArgs('noout', '--shape', 'x=1,10', '--output', 'z=scores'))
    expect(r.code).toBe(1)
    expect(JSON.parse(r.out)).toMatchObject({ code: 'EF_ERR_MODEL_INVALID', message: expect.stringContaining('"z"') })
    expect(existsSync(join(dir, 'noout.onnx'))).toBe(false)
  })
})
