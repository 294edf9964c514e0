"""The model engine, behind one interface (``models.LoadedModel``): loading a Hugging Face
directory, a GGUF file or the embedded model, device placement, chat templates, hooks owned by one
thread (``hooks.thread_hooks``), generation, prompt prefixes, worker pools and activation capture.
It knows no steering method: a steerer reaches it as hooks and a ``schedules.StepControl``.

It may import ``core``, ``code``, ``store`` and nothing above.
"""

MAY_IMPORT = ('core', 'code', 'store')
