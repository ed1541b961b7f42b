"""``crossframe show``: one idea, the code of every backend side by side, read from the installed files.

- :mod:`.catalog`: the concepts (framework-neutral: what each is, which shared code and parity
  checks belong to it).
- ``backends/<name>/concepts.py``: where each backend implements each concept, or why it needs
  none (plain data; :mod:`.declarations` reads them).
- :mod:`.locate`: the source of a named function, class or constant, found with ``ast``.
- :mod:`.views`: a concept's code for each backend; :mod:`.text` prints it, :mod:`.page` writes
  the HTML page, :mod:`.results` reads what ``crossframe compare`` and ``parity`` wrote.
"""
