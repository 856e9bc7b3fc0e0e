#!/usr/bin/python3
"""Renders conversations with Qwen2.5's own chat template (Jinja2, as transformers does) and
prints one JSON object per case: messages, add_generation_prompt, expected. Exit 77 if
python3-jinja2 is missing. usage: render_chat_jinja.py TEMPLATE.jinja"""
import json, sys
try:
    import jinja2
except ImportError:
    sys.exit(77)

env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)  # transformers' settings
tmpl = env.from_string(open(sys.argv[1], encoding="utf-8").read())
cases = [
    [{"role": "user", "content": "Hello"}],
    [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "2+2?"}],
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"}, {"role": "user", "content": "Count to 3."}],
    [{"role": "system", "content": ""}, {"role": "user", "content": "multi\nline\n\n text"}],
    [{"role": "user", "content": "a"}, {"role": "system", "content": "late system"}, {"role": "user", "content": "b"}],
    [{"role": "user", "content": "Ünïcödé ✓ 数学"}],
]
for msgs in cases:
    for gen in (True, False):
        print(json.dumps({"messages": msgs, "add_generation_prompt": gen,
                          "expected": tmpl.render(messages=msgs, add_generation_prompt=gen, tools=None)}, ensure_ascii=False))
