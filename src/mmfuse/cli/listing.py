"""``mmfuse list``: the registered encoders, fusion methods, objectives, heads and datasets."""

from __future__ import annotations

import argparse

from mmfuse.registry import ENCODERS, FUSIONS, HEADS, OBJECTIVES

FAMILIES = {"encoders": ENCODERS, "fusions": FUSIONS, "objectives": OBJECTIVES, "heads": HEADS}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list registered methods")
    p.add_argument("family", nargs="?", choices=[*FAMILIES, "datasets"], help="one family (default: all)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    families = [args.family] if args.family else [*FAMILIES, "datasets"]
    for fam in families:
        if fam == "datasets":
            from mmfuse.data.registry import list_datasets

            names = list_datasets()
        else:
            names = FAMILIES[fam].list()
        print(f"{fam}: {', '.join(names)}")
    return 0
