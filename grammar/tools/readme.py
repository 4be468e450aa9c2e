#!/usr/bin/env python3
"""Regenerates grammar/README.md: the hand-written head, the key reference from
`distill schema --format markdown`, and one example per diagnostic id taken from
the golden fixtures in Tests/SpecTests/Fixtures/errors. The tests fail when the
committed README differs from what this writes. Run it from the repository root
after `swift build`:  python3 grammar/tools/readme.py"""
import os, re, subprocess

HEAD = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'head.md')).read()
DIAGNOSTICS_INTRO = '## Diagnostics\n\nEvery diagnostic has a stable id. `E` is an error (the spec is not run), `W` a\nwarning. Each id has a golden test in Tests/SpecTests/Fixtures/errors (the\nfixtures extend `Fixtures/base.yaml`); the examples below are those fixtures\nand their exact output, checked by the tests. The `E08xx` ids are the data\'s:\n`distill check` and `distill plan` read every case\'s header when the data source\nis a folder that exists (the fixtures\' folders are in Fixtures/data), and\n`distill run` gives the same ids for the same problems.\n\n'

NO_EXAMPLE = {
    'E0109': 'Specs larger than 8 MiB are refused before parsing.',
    'E0807': 'Found when the data is prepared (it takes the voxels): a label value that\n'
             'is neither a value of a class of `data.foreground` nor of `data.background`,\n'
             'or a label that is not a whole number. `distill run` lists every such value\n'
             'with the cases that hold it, for example\n\n'
             '```text\n[prepare 534a5175323c] failed: the dataset: error[E0807]: label values 7 (brain_1), 300\n'
             '(brain_1, brain_4) are neither a class of data.foreground nor data.background (0): name each\n'
             "as a class's value, or as background\n```\n\n"
             '`distill data inspect FOLDER` reports the values dataset.json does not name, and\n'
             'exits 1.',
    'E0808': 'Found when the data is prepared: image voxels that are NaN or infinite,\n'
             'named by file (`distill data inspect` reports them too).',
    'W0813': 'Given by `distill predict`, not by `check` (a new volume has no place in a\n'
             'spec): over a quarter of the voxels the model labels foreground lie outside\n'
             "the training foreground's 0.5-99.5 percentile range (about 1% do in training),\n"
             'as when a CT model is given an MR image. Printed and written to the label\n'
             "map's CASE.json.",
    'E0001': 'No spec causes this: it means a spec passed validation but the typed\n'
             'configuration the planner and the runtime read (Sources/Language/StageConfig) cannot\n'
             'read it, so the schema and that type disagree. It is a bug in Distillery;\n'
             'please report it with the spec. The tests decode every spec and fixture.',
}

ref = subprocess.run(['.build/debug/distill', 'schema', '--format', 'markdown'],
                     capture_output=True, text=True, check=True).stdout
ids = []
for f in ['Sources/Language/SpecSyntax/SyntaxDiagnostics.swift', 'Sources/Language/Spec/SpecDiagnostics.swift', 'Sources/Language/Spec/AutoRecipe.swift', 'Sources/Planning/Plan/DataChecks.swift', 'Sources/Planning/Plan/RecipePlanning.swift']:
    ids += re.findall(r'DiagnosticID\("(\w+)", \.(\w+), "([^"]+)"\)', open(f).read())
fx = 'Tests/SpecTests/Fixtures/errors'
fixtures = sorted(x for x in os.listdir(fx) if x.endswith('.yaml'))
out = [HEAD, ref, DIAGNOSTICS_INTRO, '| id | severity | what |\n|---|---|---|\n']
out += ['| `%s` | %s | %s |\n' % i for i in ids]
out.append('\n')
for code, sev, title in ids:
    out.append('### %s: %s\n\n' % (code, title))
    examples = [f for f in fixtures if f.startswith(code)]
    if not examples:
        out.append(NO_EXAMPLE[code] + '\n\n')
    for f in examples:
        y = open(os.path.join(fx, f), 'rb').read().decode('utf-8', 'replace')
        err = open(os.path.join(fx, f[:-5] + '.err')).read()
        if len(y) > 1500:
            y = y[:300] + '\n# ... (truncated)\n'
        out.append('<!-- example: %s -->\n`errors/%s`:\n\n```yaml\n%s```\n\n```text\n%s```\n\n' % (f, f, y, err))
open('grammar/README.md', 'w').write(''.join(out))
