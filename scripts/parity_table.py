#!/usr/bin/env python3
"""Turn upstream-suite `summary.tsv` files into the parity table of docs/parity.md.

    scripts/parity_table.py --git GITDIR go=/tmp/go/summary.tsv proxy=/tmp/p/summary.tsv \
        native=/tmp/n/summary.tsv > table.md

Each test is placed in a family by the upstream test file that defines it (read from the fetched
snapshot in GITDIR: `test/volume_server/{grpc,http,rust}/*_test.go`); gRPC files are grouped into
the families of the volume server's API, HTTP tests are listed by file. Prints a markdown table of
pass counts per family and mode, then the `--run` regex that runs each family alone.
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import sys
from pathlib import Path

GRPC_FAMILIES: dict[str, tuple[str, ...]] = {
    "lifecycle": ("admin_lifecycle", "admin_readonly_collection", "health_state"),
    "admin": ("admin_extra", "production_features"),
    "data": ("data_rw", "data_stream_success", "batch_delete"),
    "copy/sync": ("copy_sync", "copy_receive_variants", "mixed_balance", "move_tail_timestamp"),
    "vacuum": ("vacuum",),
    "tail": ("tail",),
    "erasure coding": ("erasure_coding", "ec_decode_ecj", "ec_multi_disk_lifecycle", "ec_receive_disk_placement",
                       "ec_receive_truncates_mounted", "ec_verify_multi_disk"),
    "tiering": ("tiering_remote", "fetch_remote_s3"),
    "scrub/query": ("scrub_integration", "scrub_query"),
}
_FUNC = re.compile(r"^func (Test\w+)\(t \*testing\.T\)", re.M)


def test_files(git_dir: str) -> dict[tuple[str, str], str]:
    """(package, test name) -> file stem, from the snapshot's test sources."""
    names = subprocess.run(
        ["git", f"--git-dir={git_dir}", "ls-tree", "--name-only", "HEAD",
         "test/volume_server/grpc/", "test/volume_server/http/", "test/volume_server/rust/"],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    out = {}
    for path in names:
        if not path.endswith("_test.go"):
            continue
        text = subprocess.run(["git", f"--git-dir={git_dir}", "show", f"HEAD:{path}"],
                              capture_output=True, text=True, check=True).stdout
        pkg = path.split("/")[2]
        stem = Path(path).stem.removesuffix("_test")
        for name in _FUNC.findall(text):
            out[(pkg, name)] = stem
    return out


def family_of(pkg: str, stem: str) -> str:
    if pkg == "http":
        return f"http: {stem}"
    if pkg == "rust":
        return "rust (non-Go server)"
    for fam, stems in GRPC_FAMILIES.items():
        if stem in stems:
            return f"grpc: {fam}"
    return f"grpc: {stem}"


def read_summary(path: str) -> dict[tuple[str, str], str]:
    out = {}
    for line in Path(path).read_text().splitlines():
        pkg, test, result = line.split("\t")
        out[(pkg, test)] = result
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--git", required=True, help="git dir of the fetched seaweedfs/seaweedfs snapshot")
    p.add_argument("runs", nargs="+", help="MODE=summary.tsv, in column order")
    args = p.parse_args()
    files = test_files(args.git)
    runs = [(spec.split("=", 1)[0], read_summary(spec.split("=", 1)[1])) for spec in args.runs]
    families: dict[str, list[tuple[str, str]]] = collections.defaultdict(list)
    for key, stem in files.items():
        families[family_of(key[0], stem)].append(key)
    modes = [m for m, _ in runs]
    print("| family | tests | " + " | ".join(modes) + " |")
    print("|---|---|" + "---|" * len(modes))
    totals = collections.Counter()
    for fam in sorted(families):
        keys = sorted(families[fam])
        cells = []
        for mode, res in runs:
            n = sum(1 for k in keys if res.get(k) == "pass")
            ran = sum(1 for k in keys if res.get(k) in ("pass", "fail"))
            skipped = sum(1 for k in keys if res.get(k) == "skip")
            totals[mode] += n
            cell = f"{n}/{ran}" if ran else "-"
            cells.append(cell + (f" ({skipped} skipped)" if skipped else ""))
        print(f"| {fam} | {len(keys)} | " + " | ".join(cells) + " |")
    print(f"| **total** | {len(files)} | " + " | ".join(str(totals[m]) for m in modes) + " |")
    print("\n`--run` regex of each family (with `--pkg` grpc, http or rust):\n")
    for fam in sorted(families):
        print(f"- {fam}: `^(" + "|".join(sorted(k[1] for k in families[fam])) + ")$`")
    failing = [(mode, k) for mode, res in runs for k, r in sorted(res.items()) if r == "fail"]
    if failing:
        print("\nFailing tests:\n")
        for mode, (pkg, test) in failing:
            print(f"- {mode}: `{pkg}.{test}`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
