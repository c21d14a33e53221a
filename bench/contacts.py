"""Contacts: importing a large CSV, and planning a personalised send to a large group.

Each measurement runs in a child process so its peak memory (``ru_maxrss``) is its own:
``python -m bench.contacts [--rows 1000000] [--members 100000] [--url URL]``.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_NOTATIONS = ("0{a} {b} {c} {d} {e}", "+33 {a} {b} {c} {d} {e}", "0033{a}{b}{c}{d}{e}",
              "{a}.{b}.{c}.{d}.{e}", "+33{a}{b}{c}{d}{e}")
_FIRST = ("Jean", "Marie", "Zoé", "Léa", "Hugo", "Chloé", "Noël", "Inès")


def write_csv(path: Path, rows: int, seed: int = 1, *, clean: bool = False) -> None:
    """A ``;`` CSV in UTF-8 with BOM, French headers, numbers in mixed notations, about
    1 % landlines and 1 % duplicates (none when ``clean``: every row a distinct mobile)."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        out.write("Prénom;Nom;Portable;Courriel;Date de naissance;Ville;Code client\n")
        for n in range(rows):
            kind = 1.0 if clean else rng.random()
            if kind < 0.01:
                number = f"01 {n % 100:02d} 23 45 67"  # landline: rejected
            else:
                value = n - 1 if kind < 0.02 and n else n  # a duplicate of the previous one
                digits = f"6{value:08d}"
                a, b, c, d, e = digits[0], digits[1:3], digits[3:5], digits[5:7], digits[7:9]
                number = rng.choice(_NOTATIONS).format(a=a, b=b, c=c, d=d, e=e)
            first = rng.choice(_FIRST)
            out.write(f"{first};Nom{n};{number};p{n}@example.com;"
                      f"{1 + n % 28:02d}/{1 + n % 12:02d}/19{50 + n % 50};Ville{n % 500};C{n}\n")


def _child(code: str, *args: str) -> dict:
    """Run ``code`` in a fresh interpreter; its JSON result plus its peak memory."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                          text=True, check=True)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result["peak_mb"] = max(peak, before) / 1024  # Linux: kilobytes
    return result


_IMPORT = """
import json, resource, sys
from pathlib import Path
from campaigns.contacts_import import ImportOptions, import_contacts
from store.db import make_engine
engine = make_engine(sys.argv[1])
result = import_contacts(engine, Path(sys.argv[2]), ImportOptions(groups=["Bench"],
                         workers=None if sys.argv[3] == "auto" else int(sys.argv[3])))
own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps({"rows": result.rows, "added": result.added, "rejected": result.rejected,
                  "duplicates": result.duplicates, "seconds": result.seconds,
                  "own_mb": own, "worker_mb": workers}))
"""

_PLAN = """
import json, resource, sys, time
from campaigns.queue import prepare
from campaigns.plan import UserPolicy
from campaigns.request import SendRequest
from sms.config import ComplianceConfig
from store.db import Database
db = Database(sys.argv[1])
request = SendRequest(user="bench@example.com", groups=["bench"],
                      text="Bonjour {{ first_name }}, votre code {{ code_client }} à {{ ville }}")
start = time.perf_counter()
plan = db.run_sync(lambda s: prepare(s, request, policy=UserPolicy(email="bench@example.com"),
                                     compliance=ComplianceConfig(), shortcode="36105"))
seconds = time.perf_counter() - start
own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"planned": len(plan.messages), "queued": plan.count("queued"),
                  "seconds": seconds, "own_mb": own}))
"""


def bench_import(rows: int, url: str | None, workers: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-contacts-") as tmp:
        path = Path(tmp) / "contacts.csv"
        write_csv(path, rows)
        db = url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        result = _child(_IMPORT, db, str(path), workers)
        result["file_mb"] = path.stat().st_size / 2**20
        return result


def bench_plan(members: int, url: str | None) -> dict:
    """Import ``members`` contacts into group Bench, then time ``prepare`` of a
    personalised send to ``#bench``."""
    with tempfile.TemporaryDirectory(prefix="bench-plan-") as tmp:
        path = Path(tmp) / "contacts.csv"
        write_csv(path, members)
        db = url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        _child(_IMPORT, db, str(path), "auto")
        return _child(_PLAN, db)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.contacts", description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--workers", default="auto", help="auto, 0 (inline) or a count")
    parser.add_argument("--url", help="database URL (default: SQLite in a temp dir)")
    args = parser.parse_args()
    run(args.rows, args.members, args.url, args.workers)


def run(rows: int, members: int, url: str | None = None, workers: str = "auto") -> None:
    """(f) the import of ``rows`` contacts, (g) planning a send to ``members``."""
    if rows:
        start = time.perf_counter()
        r = bench_import(rows, url, workers)
        print(f"(f) import of {r['rows']} rows ({r['file_mb']:.0f} MB CSV): {r['seconds']:.1f} s = "
              f"{r['rows'] / r['seconds']:.0f} rows/s; {r['added']} added, {r['rejected']} "
              f"rejected, {r['duplicates']} duplicates; peak memory {r['own_mb']:.0f} MB "
              f"(importer), {r['worker_mb']:.0f} MB (largest worker) "
              f"[{time.perf_counter() - start:.0f} s with the file's creation]")
    if members:
        r = bench_plan(members, url)
        print(f"(g) plan of a personalised send to a group of {members}: {r['planned']} "
              f"planned ({r['queued']} queued) in {r['seconds']:.2f} s, peak memory "
              f"{r['own_mb']:.0f} MB")


if __name__ == "__main__":
    main()
