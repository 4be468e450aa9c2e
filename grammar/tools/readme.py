#!/usr/bin/env python3
"""Regenerates grammar/README.md: the hand-written head, the key reference from
`distill schema --format markdown`, and one example per diagnostic id taken from
the golden fixtures in Tests/SpecTests/Fixtures/errors. The tests fail when the
committed README differs from what this writes. Run it from the repository root
after `swift build`:  python3 grammar/tools/readme.py"""
import os, re, subprocess

HEAD = '# The Distillery spec language\n\nA spec is one YAML file (plus the files it `extends`) that describes a whole\nknowledge-distillation study: the data and its split, the models, the training\nstages with their losses, the evaluation and the sweep. `distill check` reads\nit like a compiler: every problem at once, each with its file, line and column.\n\nThis page is the language reference. Its key reference is generated from the\nSwift types (`distill schema --format markdown`), and so is\n`distill.schema.json` beside it (`distill schema`); the tests fail when either\nis stale. Name the schema in a spec for completion in editors that use\nyaml-language-server:\n\n```yaml\n# yaml-language-server: $schema=../grammar/distill.schema.json\n```\n\n## Reading rules\n\n- Scalars keep their style: `0.1` is a number where a number is expected,\n  `"0.1"` is a string and is rejected there. `yes`, `no`, `on` and `off` are\n  strings; booleans are `true` and `false`.\n- One document per file; indentation with spaces only; UTF-8 only. Anchors,\n  aliases and merge keys (`<<: *base`) work, within limits: 64 levels of\n  nesting, 200,000 nodes after alias expansion, 8 MiB per file.\n- `extends: base.yaml` (or a list) lays this file over its bases, key by key;\n  lists are replaced whole; `null` deletes a key. Cycles are reported.\n- Paths (`msd:`, `init.file`) expand `${NAME}` and `${NAME:-default}` from the\n  environment.\n- Names of models, stages, subsets, tap pairs and axes are\n  `[A-Za-z_][A-Za-z0-9_-]*`; sweep value and variant names may also hold `.`\n  and `+` (`ee+pmd`, `infonce-0.4`) and become folder names.\n\n## Taps\n\nEvery architecture publishes a tap manifest: the named intermediate outputs\nthat distillation may read, with their channels and stride. The checker, the\ncost model and the runtime read the same manifest (Sources/Architecture).\n\n| arch | taps |\n|---|---|\n| `unet` | `input`, `encoder.{i}` (before pooling), `pool.{i}`, `bottleneck`, `decoder.{i}` (0 = deepest), `logits.{head}` |\n| `multitask_unet` | as `unet`, with one decoder per head: `decoder.{head}.{i}` |\n| `transunet` | `input`, `stem`, `encoder.{i}` (residual stages), `vit` (tokens), `bottleneck`, `decoder.{head}.{i}`, `logits.{head}` |\n\nA tap pair compares a teacher map with a student map. Different channel\ncounts need an `adapter` (a 1x1 conv on either side); different sizes need a\n`resample` of the teacher map (`bilinear`, `nearest`, or `avgpool` to shrink).\n\n## Sweeps\n\n`sweep.axes` names axes; each axis writes named values to one `path`, or\neach value is a mapping of several paths to values. `grid` multiplies axes,\n`zip` advances axes together, `variants` adds named points, `exclude` drops\ncombinations. A variant is named by its choices, e.g.\n`teacher=t1,student=s1,scales=ee+pmd`. Every variant is checked like a spec\nof its own; a diagnostic that only one variant has says which.\n\n## Keys\n\n'
DIAGNOSTICS_INTRO = '## Diagnostics\n\nEvery diagnostic has a stable id. `E` is an error (the spec is not run), `W` a\nwarning. Each id has a golden test in Tests/SpecTests/Fixtures/errors (the\nfixtures extend `Fixtures/base.yaml`); the examples below are those fixtures\nand their exact output, checked by the tests.\n\n'

NO_EXAMPLE = {
    'E0109': 'Specs larger than 8 MiB are refused before parsing.',
    'E0001': 'No spec causes this: it means a spec passed validation but the typed\n'
             'configuration the planner and the runtime read (Sources/StageConfig) cannot\n'
             'read it, so the schema and that type disagree. It is a bug in Distillery;\n'
             'please report it with the spec. The tests decode every spec and fixture.',
}

ref = subprocess.run(['.build/debug/distill', 'schema', '--format', 'markdown'],
                     capture_output=True, text=True, check=True).stdout
ids = []
for f in ['Sources/SpecSyntax/SyntaxDiagnostics.swift', 'Sources/Spec/SpecDiagnostics.swift']:
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
