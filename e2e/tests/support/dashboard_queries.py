# Test support for e2e/tests/contrib_prometheus.rs: checks the shape of a
# Grafana dashboard (contrib/grafana/roc-tunnels.json) and prints every
# query in it, one per line, for the test to run against a real Prometheus:
#
#   panel<TAB>TITLE<TAB>REFID<TAB>EXPR       one per panel target
#   variable<TAB>NAME<TAB>-<TAB>QUERY        one per query variable
#
# (newlines in an expression become spaces). The shape: valid JSON; a
# datasource variable of type prometheus; every panel but rows with a
# unique id, a title, a gridPos and targets; every panel and target on the
# ${datasource} variable; every target with a refId and an expr. A fault is
# one line on stderr and exit 1.
#
# Usage: python3 dashboard_queries.py FILE

import json
import sys


def fail(why):
    print("dashboard_queries: %s: %s" % (sys.argv[1], why), file=sys.stderr)
    sys.exit(1)


def main():
    try:
        with open(sys.argv[1], encoding="utf-8") as f:
            dash = json.load(f)
    except ValueError as e:
        fail("not JSON: %s" % e)
    variables = dash.get("templating", {}).get("list", [])
    if not any(v.get("type") == "datasource" and v.get("query") == "prometheus" and v.get("name") == "datasource" for v in variables):
        fail("no datasource variable named datasource of type prometheus")
    ds = {"type": "prometheus", "uid": "${datasource}"}
    out = []
    for v in variables:
        if v.get("type") == "query":
            if v.get("datasource") != ds:
                fail("variable %s is not on ${datasource}" % v.get("name"))
            if v.get("query") != v.get("definition") or not isinstance(v.get("query"), str):
                fail("variable %s: query and definition differ" % v.get("name"))
            out.append("variable\t%s\t-\t%s" % (v["name"], v["query"]))
    ids = set()
    panels = list(dash.get("panels", []))
    for p in panels:
        panels.extend(p.get("panels", []))
    for p in panels:
        title = p.get("title")
        if not title or "gridPos" not in p or "id" not in p:
            fail("a panel without a title, id or gridPos: %r" % p)
        if p["id"] in ids:
            fail("panel id %s used twice" % p["id"])
        ids.add(p["id"])
        if p.get("type") == "row":
            continue
        if p.get("datasource") != ds:
            fail("panel %r is not on ${datasource}" % title)
        targets = p.get("targets") or fail("panel %r has no query" % title)
        refs = set()
        for t in targets:
            if t.get("datasource") != ds:
                fail("a query of panel %r is not on ${datasource}" % title)
            if not t.get("refId") or t["refId"] in refs or not t.get("expr"):
                fail("panel %r: a query without an expr or a unique refId" % title)
            refs.add(t["refId"])
            out.append("panel\t%s\t%s\t%s" % (title, t["refId"], " ".join(t["expr"].split())))
    print("\n".join(out))


if __name__ == "__main__":
    main()
