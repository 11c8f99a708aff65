"""Summarise py-spy's collapsed stacks: where the samples are, by own time and inclusive time.

python -m bench.profile_summary DIR/web-1234.txt [--top 30] [--match rapport]
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path


def summarise(path: Path, top: int, match: str) -> str:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():  # a line cut short when py-spy was stopped
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    lines = [f"{path.name}: {total} samples", "", "own time:"]
    lines += [f"  {n / total:6.1%}  {f}" for f, n in own.most_common(top)]
    lines += ["", f"inclusive ({match!r} frames):"]
    chosen = [(f, n) for f, n in inclusive.most_common() if match in f][:top]
    lines += [f"  {n / total:6.1%}  {f}" for f, n in chosen]
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("path", type=Path)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--match", default="rapport")
    args = parser.parse_args()
    print(summarise(args.path, args.top, args.match))
