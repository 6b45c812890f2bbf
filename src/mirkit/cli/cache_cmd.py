"""``mirkit cache verify|list``: check and inspect a feature store."""

from __future__ import annotations

import argparse


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("cache", help="inspect or verify a feature store")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    verify = actions.add_parser("verify", help="check every stored item; --repair deletes bad ones")
    verify.add_argument("--store", required=True)
    verify.add_argument("--repair", action="store_true", help="delete corrupt items and stray temporary files")
    verify.set_defaults(run=run_verify)
    listing = actions.add_parser("list", help="recipes in the store with item and error counts")
    listing.add_argument("--store", required=True)
    listing.set_defaults(run=run_list)


def run_verify(args: argparse.Namespace) -> int:
    from mirkit.features.store import FeatureStore

    store = FeatureStore(args.store)
    bad = 0
    for recipe in store.recipes():
        report = store.recipe(recipe).verify(repair=args.repair)
        bad += len(report.corrupt) + len(report.temporary)
        action = "removed" if args.repair else "found"
        print(f"{recipe.recipe_id} ({recipe.encoder}): {report.ok} ok, {len(report.corrupt)} corrupt {action}, "
              f"{len(report.temporary)} temporary files {action}")
        for path, why in report.corrupt:
            print(f"  corrupt: {path}: {why}")
    if bad and not args.repair:
        print("Run `mirkit cache verify --repair` to delete them; the next `mirkit extract` recomputes those items.")
    return 1 if bad and not args.repair else 0


def run_list(args: argparse.Namespace) -> int:
    from mirkit.features.store import FeatureStore

    store = FeatureStore(args.store)
    for recipe in store.recipes():
        items = store.recipe(recipe)
        print(f"{recipe.recipe_id}  {recipe.encoder:<22} layers={len(recipe.layers):<3} pool={recipe.pooling:<4} "
              f"window={recipe.window_s:g}s items={len(items.item_ids())} errors={len(items.errors())}")
    return 0
