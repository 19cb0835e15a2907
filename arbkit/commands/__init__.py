"""One module per CLI command.

Each module exposes ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``;
`arbkit.cli` lists them in `arbkit.cli.COMMANDS`.
"""
