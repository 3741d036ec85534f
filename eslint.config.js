// Lint rules for the whole workspace (`pnpm lint` runs Prettier, this, then knip).
// TypeScript source and tests get typescript-eslint's strict, type-aware sets;
// the .mjs scripts, test support and benchmarks a lighter, syntax-only set.
// Formatting is Prettier's alone: none of the sets below has formatting rules.
import js from '@eslint/js'
import globals from 'globals'
import tseslint from 'typescript-eslint'
import local from './scripts/eslint-short-names.mjs'

const TESTS = ['**/test/**/*.ts', '**/test/**/*.mts']

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', '.venv-ref/**', 'test/bench/results/**'] },
  {
    plugins: { local },
    rules: { 'local/short-names-in-long-scopes': ['error', { maxLines: 8, allow: ['_'] }] },
  },
  {
    // .tsx: the console's browser code (hub/src/console/ui), Preact components.
    files: ['**/*.ts', '**/*.mts', '**/*.tsx'],
    extends: [js.configs.recommended, tseslint.configs.strictTypeChecked, tseslint.configs.stylisticTypeChecked],
    languageOptions: {
      parserOptions: {
        // Files outside every tsconfig get the base compiler options (strict included).
        projectService: {
          allowDefaultProject: ['vitest.config.ts', 'scripts/*.d.mts'],
          defaultProject: 'tsconfig.base.json',
        },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      // Numbers and booleans read fine in messages; arrays, other objects, nullish and `any`
      // stay flagged. URLSearchParams (a query string) and URL print what they hold; Node's
      // global URLSearchParams is the `url` module's class, not lib.dom's.
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        {
          allowNumber: true,
          allowBoolean: true,
          allow: [
            { name: ['Error', 'URL', 'URLSearchParams'], from: 'lib' },
            { name: ['URL', 'URLSearchParams'], from: 'package', package: 'url' },
          ],
        },
      ],
      // `a || b` on strings is how this code says "an empty string counts as unset": protobuf
      // fields default to '' (a node without a name), and so do empty env vars and flags.
      '@typescript-eslint/prefer-nullish-coalescing': ['error', { ignorePrimitives: { string: true } }],
      // `(x) => list.push(x)` and `return done(err)` in a void callback (the Node idiom the
      // broker and handler code uses) are clear; a void value used as a value still is not.
      // Without noUncheckedIndexedAccess an index read is typed as always present, and a
      // decoded wire message as already valid: the guards this rule calls unnecessary are
      // mostly checks of exactly those (a missing tensor, a truncated buffer, a bad body).
      '@typescript-eslint/no-unnecessary-condition': 'off',
      // Prefers `x!` to `x as T`, which no-non-null-assertion (strict) forbids: the two contradict.
      '@typescript-eslint/non-nullable-type-assertion-style': 'off',
      '@typescript-eslint/no-confusing-void-expression': [
        'error',
        { ignoreArrowShorthand: true, ignoreVoidReturningFunctions: true },
      ],
    },
  },
  {
    // fastify's plugins, hooks and handlers are async by contract: the returned
    // value is the reply and a throw becomes the error reply, await or not.
    files: ['hub/src/api/**/*.ts', 'hub/src/metrics/**/*.ts'],
    rules: { '@typescript-eslint/require-await': 'off' },
  },
  {
    files: TESTS,
    rules: {
      // Tests read JSON bodies as `any` (fastify inject's res.json(), the e2e api()
      // helper) and check their shape with expect, which fails on a wrong shape.
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      // A `!` that is wrong throws and fails the test, which is what the test wants.
      '@typescript-eslint/no-non-null-assertion': 'off',
      // Variables assigned in beforeAll are undefined when it fails; afterAll's `?.`
      // guards are needed although the declared type says otherwise.
      '@typescript-eslint/no-unnecessary-condition': 'off',
    },
  },
  {
    // A function fits on one screen [CONVENTIONS: habits]; split a longer one along its seams.
    files: ['shared/src/**/*.ts', 'hub/src/**/*.ts', 'agent/src/**/*.ts'],
    rules: {
      'max-lines-per-function': ['error', { max: 60, skipBlankLines: true, skipComments: true, IIFEs: true }],
    },
  },
  {
    files: ['**/*.mjs', '**/*.js'],
    extends: [js.configs.recommended],
    languageOptions: { globals: { ...globals.node } },
  },
)
