#!/usr/bin/env python3
"""A client in the style of the original tool, the baseline of the capture path.

The original monitor (2016, Python) ran `ps aux` with `subprocess`, kept the
lines whose command runs ssh with forwards, stored each tunnel as a dict in a
list and sent the list as a string. This is that client's work on a saved
capture, written the way it was (split on white space, a regular expression
per forward spec, a dict per tunnel, `json.dumps`), with `-L`, `-R`, `-D`
and `-o LocalForward` style options so that it finds the same forwards as
ours on the benchmark's capture:

    seed-client.py --ps-file CAPTURE --json     one JSON object per tunnel

`scripts/bench` (case `client`, through `bench`) times it against
`gateway-client --ps-file CAPTURE --dry-run --json`, interleaved. It runs with
the real interpreter (not a version manager's shim), as cron would run it.
"""

import json
import re
import sys

SPEC = re.compile(r"^(?:(\[[^\]]*\]|[^:]*):)?(\d+)(?::(\[[^\]]*\]|[^:]*):(\d+))?$")
FLAGS_WITH_VALUE = set("BbcDEeFIiJLlmOopQRSWw")
OPTION_KIND = {"localforward": "L", "remoteforward": "R", "dynamicforward": "D"}


def forwards(args):
    """(kind, spec) of every forward in an ssh argument list, and the destination."""
    out = []
    dest = ""
    i = 0
    while i < len(args):
        a = args[i]
        i += 1
        if not a.startswith("-") or len(a) < 2:
            if not dest:
                dest = a.split("@")[-1]
            continue
        j = 1
        while j < len(a):
            flag = a[j]
            j += 1
            if flag not in FLAGS_WITH_VALUE:
                continue
            if j < len(a):
                value = a[j:]
            elif i < len(args):
                value = args[i]
                i += 1
            else:
                value = ""
            if flag in "LRD":
                out.append((flag, value))
            elif flag == "o":
                key, _, rest = value.replace("=", " ", 1).partition(" ")
                kind = OPTION_KIND.get(key.lower())
                if kind:
                    listen, _, target = rest.strip().partition(" ")
                    out.append((kind, listen + (":" + target.strip() if target else "")))
            break
    return out, dest


def find_tunnels(text):
    """The tunnels of `ps aux` output, as the original's list of dicts."""
    tunnels = []
    for line in text.splitlines():
        fields = line.split(None, 10)
        if len(fields) < 11 or not fields[1].isdigit():
            continue
        args = fields[10].split()
        if not re.search(r"(^|/)(auto)?ssh$", args[0]):
            continue
        specs, dest = forwards(args[1:])
        for kind, spec in specs:
            m = SPEC.match(spec)
            if not m:
                continue
            bind, port, host, hport = m.groups()
            tunnels.append({
                "pid": int(fields[1]),
                "user": fields[0],
                "kind": kind,
                "bind": (bind or "").strip("[]"),
                "listen_port": int(port),
                "target_host": (host or "").strip("[]"),
                "target_port": int(hport or 0),
                "dest": dest,
                "start": fields[8],
                "cpu_time": fields[9],
            })
    return tunnels


def main(argv):
    if len(argv) != 3 or argv[0] != "--ps-file" or argv[2] != "--json":
        sys.stderr.write("usage: seed-client.py --ps-file CAPTURE --json\n")
        return 2
    with open(argv[1], encoding="utf-8", errors="replace") as f:
        tunnels = find_tunnels(f.read())
    sys.stdout.write("".join(json.dumps(t) + "\n" for t in tunnels))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
