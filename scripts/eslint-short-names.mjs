// A local ESLint rule: a one-letter name is fine for a lambda parameter or a
// loop index read within a few lines, but a reader of a long scope should not
// have to scroll back to learn what `d` or `r` holds. The core `id-length` rule
// cannot tell the two apart (it flags `(a, b) => a - b` too), so this rule
// measures the lines between a one-letter binding's declaration and its last use.

/** @type {import('eslint').Rule.RuleModule} */
const rule = {
  meta: {
    type: 'suggestion',
    docs: { description: 'Disallow one-letter names whose uses span more than `maxLines` lines' },
    schema: [
      {
        type: 'object',
        properties: {
          maxLines: { type: 'integer', minimum: 0 },
          allow: { type: 'array', items: { type: 'string' } },
        },
        additionalProperties: false,
      },
    ],
    messages: {
      long: "'{{name}}' is used over {{lines}} lines: give it a name that says what it holds.",
    },
  },
  create(context) {
    const options = context.options[0] ?? {}
    const maxLines = options.maxLines ?? 8
    const allow = new Set(options.allow ?? ['_'])
    const reported = new Set()

    function checkScope(scope) {
      for (const variable of scope.variables) {
        if (variable.name.length !== 1 || allow.has(variable.name) || variable.defs.length === 0) continue
        // Type parameters (`T`, `K`) are one letter by convention.
        if (variable.defs.every((def) => def.type === 'Type')) continue
        const declared = variable.identifiers[0]
        if (!declared || reported.has(declared)) continue
        let last = declared.loc.end.line
        for (const ref of variable.references) last = Math.max(last, ref.identifier.loc.end.line)
        const lines = last - declared.loc.start.line
        if (lines > maxLines) {
          reported.add(declared)
          context.report({ node: declared, messageId: 'long', data: { name: variable.name, lines: String(lines) } })
        }
      }
      for (const child of scope.childScopes) checkScope(child)
    }

    return {
      'Program:exit'(node) {
        checkScope(context.sourceCode.getScope(node))
      },
    }
  },
}

export default { rules: { 'short-names-in-long-scopes': rule } }
