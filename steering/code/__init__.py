"""What a model writes and is asked: the target languages (``languages``), code fences,
language detection, the compilers and parsers that judge an answer (``toolchains``), and prompt
sets (``prompts``).

It may import ``core`` and nothing above.
"""

MAY_IMPORT = ('core',)
