"""The page's CSS, inline (the page loads nothing: its Content-Security-Policy forbids it).

The columns are a grid of at least 280 px each: four side by side from about 1200 px wide,
fewer per row on narrower screens. Code wraps instead of scrolling, so every line of every
column is readable without touching four scroll bars.
"""

CSS = """
:root { --gap: 12px; --ink: #1f2328; --muted: #59636e; --rule: #d1d9e0; }
* { box-sizing: border-box; }
body { margin: 0; padding: 0 16px 32px; color: var(--ink); background: #fff;
       font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; }
header { padding: 10px 0 4px; border-bottom: 1px solid var(--rule); }
h1 { font-size: 20px; margin: 0 0 2px; }
h2 { font-size: 17px; margin: 0; }
h2 a, h3 a { color: inherit; text-decoration: none; }
header p, .summary, .meta { margin: 2px 0 6px; color: var(--muted); }
nav { display: flex; flex-wrap: wrap; gap: 4px 14px; margin: 6px 0 4px; }
nav a { color: #0550ae; }
section { padding: 12px 0 8px; border-bottom: 1px solid var(--rule); }
.section-head { display: flex; justify-content: space-between; align-items: baseline; gap: 12px; }
.top { font-size: 12px; color: var(--muted); }
.columns { display: grid; grid-template-columns: repeat(auto-fit, minmax(280px, 1fr)); gap: var(--gap);
           align-items: start; margin-top: 8px; }
.column { min-width: 0; border: 1px solid var(--rule); border-radius: 6px; overflow: hidden; }
.column > h3 { margin: 0; padding: 6px 8px; font-size: 15px; display: flex; justify-content: space-between;
               align-items: baseline; gap: 8px; }
.column > h3 small { font-weight: normal; color: var(--muted); font-size: 12px; }
.b-torch > h3 { background: #fde3dd; } .b-jax > h3 { background: #dde8fb; }
.b-tf > h3 { background: #ffe9c2; } .b-numpy > h3 { background: #d9f0f7; }
.column > * + * { margin-left: 8px; margin-right: 8px; }
.shared { margin-top: 8px; }
figure { margin: 8px 0; }
figcaption { font-size: 12px; color: var(--muted); margin-bottom: 2px; overflow-wrap: anywhere; }
figcaption .name { color: var(--ink); font-weight: 600; }
.code { border-radius: 4px; }
.code pre { margin: 0; padding: 6px 8px; white-space: pre-wrap; overflow-wrap: anywhere;
            font: 12px/1.4 "DejaVu Sans Mono", Menlo, Consolas, monospace; }
.code .ln { display: block; padding-left: calc((var(--i) + 4) * 1ch); text-indent: calc((var(--i) + 4) * -1ch);
            min-height: 1.4em; }
.code .indent { white-space: pre; }
.note { font-size: 13px; margin: 8px; padding: 6px 8px; background: #f6f8fa; border-left: 3px solid var(--rule); }
.note p { margin: 0 0 4px; } .note pre { margin: 4px 0; white-space: pre-wrap; font-size: 12px; }
.note summary { cursor: pointer; color: var(--muted); font-size: 12px; }
code { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 0.92em; }
.not-needed { font-style: italic; color: var(--muted); margin: 8px; }
.run { font-size: 12px; margin: 8px; padding: 4px 6px; background: #eef6ee; border-radius: 4px; }
table { border-collapse: collapse; font-size: 12px; margin: 6px 0; }
th, td { border: 1px solid var(--rule); padding: 2px 6px; text-align: left; vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.pass { color: #1a7f37; font-weight: 600; } .fail { color: #cf222e; font-weight: 600; }
.parity { margin: 8px; } .parity table { width: 100%; }
.results img { max-width: 100%; height: auto; border: 1px solid var(--rule); }
footer { color: var(--muted); font-size: 12px; padding-top: 10px; }
"""
