"""The ``mmfuse`` command line: parses options, builds from the registries, calls the Python API.

Each sub-command lives in its own module of this package and exposes
``register(subparsers) -> None``; modules are discovered automatically.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from mmfuse.errors import MmfuseError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mmfuse", description="Multimodal learning: fuse, train, evaluate and compare."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mmfuse`` console script.

    User errors, and failures of the machine rather than of mmfuse (a full disk, a permission, no
    memory), print one sentence and exit 2; an interrupt exits 130. Anything else is a bug in mmfuse
    and keeps its traceback, to be reported.
    """
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except MmfuseError as exc:
        print(f"mmfuse: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(
            f"mmfuse: error: {exc.strerror or exc}{where}; free space or fix the permission "
            f"and run again (nothing half-written was kept).",
            file=sys.stderr,
        )
        return 2
    except MemoryError:
        print(
            "mmfuse: error: out of memory; use a smaller --batch-size or table, or a machine with more memory.",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("mmfuse: interrupted (nothing half-written was kept).", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
