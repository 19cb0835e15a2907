"""One module per CLI command.

Each module exposes ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``;
`arbkit.cli` lists them in `arbkit.cli.COMMANDS`. A command that is not built yet has no
module and says so when called.
"""
