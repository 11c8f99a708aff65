"""`python -m bench`: run the scenarios, print the table, write bench/results/latest.*.

python -m bench                      # everything (under ten minutes on 2 cores)
python -m bench --quick --only S1,S7 # small sizes, a few scenarios
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path

from bench import env
from bench.results import Result, failed, write

ALL = ("S1", "S2", "S3", "S4", "S5", "S7", "S10")
NAMES = {
    "S1": "signed SMS webhooks acknowledged durably",
    "S2": "webhook to agent screen",
    "S3": "S1 load delivered three times, shuffled",
    "S4": "idle websockets, memory per socket",
    "S5": "one event fanned out to N agents",
    "S7": "timeline and inbox list at scale",
    "S10": "S2 on SQLite",
}
RESULTS = Path(__file__).resolve().parent / "results"
# A scenario that runs longer than this is stopped and reported as failed.
SCENARIO_TIMEOUT = {"quick": 240.0, "full": 420.0}


def _groups(
    wanted: set[str], quick: bool
) -> list[tuple[set[str], Callable[[], Awaitable[list[Result]]]]]:
    from bench import queries, sockets, webhooks

    groups: list[tuple[set[str], Callable[[], Awaitable[list[Result]]]]] = []
    if wanted & {"S1", "S3"}:
        groups.append(({"S1", "S3"} & wanted, lambda: webhooks.ack_scenarios(wanted, quick)))
    if "S2" in wanted:
        groups.append(({"S2"}, lambda: _one(webhooks.screen_scenario(quick, sqlite=False))))
    if "S10" in wanted:
        groups.append(({"S10"}, lambda: _one(webhooks.screen_scenario(quick, sqlite=True))))
    if "S4" in wanted:
        groups.append(({"S4"}, lambda: _one(sockets.idle_sockets(quick))))
    if "S5" in wanted:
        groups.append(({"S5"}, lambda: _one(sockets.fan_out(quick))))
    if "S7" in wanted:
        groups.append(({"S7"}, lambda: queries.timeline_and_list(quick)))
    return groups


async def _one(coro: Awaitable[Result]) -> list[Result]:
    return [await coro]


async def main(wanted: set[str], quick: bool) -> list[Result]:
    limit = SCENARIO_TIMEOUT["quick" if quick else "full"]
    results: list[Result] = []
    for ids, run in _groups(wanted, quick):
        label = ",".join(sorted(ids))
        print(f"- {label} ...", flush=True)
        started = time.monotonic()
        try:
            results += await asyncio.wait_for(run(), limit)
        except Exception as exc:  # one broken scenario must not hide the others
            traceback.print_exc()
            results += [failed(i, NAMES[i], f"{type(exc).__name__}: {exc}") for i in sorted(ids)]
        print(f"  {label} took {time.monotonic() - started:.0f} s", flush=True)
    order = {name: n for n, name in enumerate(ALL)}
    return sorted(results, key=lambda r: order.get(r.id, 99))


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--only", default="", help="comma-separated scenario ids (default: all)")
    parser.add_argument("--quick", action="store_true", help="small sizes, short steps")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for latest.json/.md")
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="sample every Rapport process with py-spy into this folder",
    )
    args = parser.parse_args(argv)
    wanted = {s.strip().upper() for s in args.only.split(",") if s.strip()} or set(ALL)
    unknown = wanted - set(ALL)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))} (known: {', '.join(ALL)})")
    if not env.pg_available() and wanted & {"S1", "S2", "S3", "S7"}:
        print(
            "error: PostgreSQL is not reachable on 127.0.0.1:5432 (S1, S2, S3, S7 need it)",
            file=sys.stderr,
        )
        return 2
    env.PROFILE_DIR = args.profile
    env.stop_cleanly_on_sigterm()
    limit = env.raise_file_limit()
    print(
        f"Rapport benchmarks: {', '.join(s for s in ALL if s in wanted)}"
        f"{' (quick)' if args.quick else ''}; open files limit {limit}",
        flush=True,
    )
    started = time.monotonic()
    try:
        import uvloop

        results = uvloop.run(main(wanted, args.quick))
    except KeyboardInterrupt:
        print("interrupted; processes stopped and databases dropped", file=sys.stderr)
        return 130
    markdown = write(results, args.out, quick=args.quick, seconds=time.monotonic() - started)
    print()
    print(markdown)
    print(f"written to {args.out / 'latest.json'} and {args.out / 'latest.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(run())
