#!/usr/bin/env bash
# Checks the monitoring files shipped in runbooks/:
#   1. promtool check rules runbooks/alerts.yml     (syntax, templates)
#   2. promtool test rules runbooks/alerts_test.yml (unit tests: every alert fires on the series it
#      should, with its labels and annotations, and stays quiet on healthy or borderline ones)
#   3. every alert has a runbook_url naming an existing runbooks/<file>.md, and the rules and
#      their tests use only metric names replicator/metrics.cc registers
#   4. runbooks/dashboard.json parses as JSON, every metric its panels and template variables
#      query is one replicator/metrics.cc registers, and every panel query is valid PromQL
#      (promtool check rules on the queries, Grafana variables replaced by sample values).
# Prints what is wrong (naming the alert or the panel) and exits non-zero on any failure.
#
# Usage: scripts/check-alerts.sh      (needs promtool: Debian's `prometheus` package, and python3)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

for tool in promtool python3; do
  if ! command -v "$tool" >/dev/null; then
    echo "check-alerts: $tool not found (promtool: apt-get install prometheus, or scripts/install-deps.sh)" >&2
    exit 1
  fi
done

ALERTS=runbooks/alerts.yml
TESTS=runbooks/alerts_test.yml
DASHBOARD=runbooks/dashboard.json
METRICS_CC=replicator/metrics.cc

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# Every check runs, so one run reports every problem; the exit status is 1 if any failed.
failed=()

echo "== promtool check rules $ALERTS"
promtool check rules "$ALERTS" || failed+=("promtool check rules $ALERTS")

echo "== promtool test rules $TESTS"
promtool test rules "$TESTS" || failed+=("promtool test rules $TESTS")

echo "== runbooks of the alerts; metrics of the rules, their tests and the dashboard"
python3 - "$ALERTS" "$TESTS" "$DASHBOARD" "$METRICS_CC" "$tmp/dashboard_rules.yml" <<'PY' ||
import json
import os
import re
import sys

alerts_path, tests_path, dashboard_path, metrics_cc, rules_out = sys.argv[1:6]
errors = []

# --- Alerts: each `- alert:` rule needs one runbook_url naming an existing runbooks/*.md.
# (Line-based, so no YAML module is needed; promtool has already checked the file's structure.)
alerts = []  # [name, [runbook_url, ...]]
with open(alerts_path) as f:
    for line in f:
        m = re.match(r"\s*-\s+alert:\s*(\S+)", line)
        if m:
            alerts.append([m.group(1), []])
            continue
        m = re.match(r"\s*-\s+record:", line)
        if m:
            alerts.append([None, []])
            continue
        m = re.match(r"\s*runbook_url:\s*[\"']?([^\"'\s]+)", line)
        if m and alerts:
            alerts[-1][1].append(m.group(1))
alerts = [a for a in alerts if a[0] is not None]
if not alerts:
    errors.append(f"{alerts_path}: no alert rules found")
for name, urls in alerts:
    if len(urls) != 1:
        errors.append(f"alert {name}: expected one runbook_url annotation, found {len(urls)}")
        continue
    url = urls[0]
    if not re.fullmatch(r"runbooks/[A-Za-z0-9._-]+\.md", url):
        errors.append(f"alert {name}: runbook_url {url!r} is not runbooks/<file>.md")
    elif not os.path.isfile(url):
        errors.append(f"alert {name}: runbook_url {url} does not exist")

# --- Metrics registered by the daemon: Build(prometheus::BuildCounter|BuildGauge(), "name", ...).
with open(metrics_cc) as f:
    source = f.read()
exported = set(re.findall(
    r'Build\(\s*prometheus::Build(?:Counter|Gauge)\(\)\s*,\s*"([a-zA-Z_:][a-zA-Z0-9_:]*)"',
    source))
# Histograms and summaries are exported as <name>_bucket/_count/_sum (and <name> for quantiles).
for kind, name in re.findall(
        r'Build\(\s*prometheus::Build(Histogram|Summary)\(\)\s*,\s*"([a-zA-Z_:][a-zA-Z0-9_:]*)"',
        source):
    exported |= {name + "_count", name + "_sum"}
    exported.add(name + "_bucket" if kind == "Histogram" else name)
if not exported:
    errors.append(f"{metrics_cc}: no metric names found (did the Build(...) pattern change?)")

# --- Rules and their tests use only exported metrics: every xdc_* name in an expression (comments
# and annotations skipped) and the metric of every input series of the tests.
def check_names(path, names_by_line):
    for lineno, name in names_by_line:
        if name not in exported:
            errors.append(f"{path}:{lineno}: metric {name} is not registered in {metrics_cc}")

with open(alerts_path) as f:
    rule_lines = f.read().split("\n")
in_expr, used = False, []
for lineno, line in enumerate(rule_lines, 1):
    m = re.match(r"(\s*)(-\s+)?(\w+):", line)
    if m and not line.lstrip().startswith("#"):
        in_expr = m.group(3) == "expr"
    if in_expr and not line.lstrip().startswith("#"):
        used += [(lineno, n) for n in re.findall(r"\bxdc_[a-zA-Z0-9_:]*", line)]
if not used:
    errors.append(f"{alerts_path}: no xdc_* metric found in any expr")
check_names(alerts_path, used)
with open(tests_path) as f:
    check_names(tests_path, [(lineno, m.group(1)) for lineno, line in enumerate(f, 1)
                             for m in [re.match(r"\s*-?\s*series:\s*[\"']([a-zA-Z_:][a-zA-Z0-9_:]*)", line)]
                             if m])

# --- Dashboard.
try:
    with open(dashboard_path) as f:
        dashboard = json.load(f)
except (OSError, json.JSONDecodeError) as e:
    print(f"check-alerts: {dashboard_path} is not valid JSON: {e}", file=sys.stderr)
    sys.exit(1)

AGGREGATORS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
               "bottomk", "topk", "quantile", "limitk", "limit_ratio"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
            "and", "or", "unless", "atan2", "inf", "nan"}

def metric_names(expr):
    """Metric names an expression selects: identifiers that are not functions, aggregators,
    keywords or label names (label matchers, ranges, strings and grouping lists removed)."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)  # strings
    e = re.sub(r"\{[^{}]*\}", " ", e)                                       # label matchers
    e = re.sub(r"\[[^\[\]]*\]", " ", e)                                     # ranges, subqueries
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", r" \1 ", e)
    e = re.sub(r"\$\{?\w+\}?", " ", e)                                      # Grafana variables
    names = set()
    for m in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)", e):
        word = m.group(1)
        if re.match(r"\s*\(", e[m.end():]):   # a function call
            continue
        if word.lower() in KEYWORDS or word in AGGREGATORS:
            continue
        if re.fullmatch(r"\d+[smhdwy]", word):
            continue
        names.add(word)
    # Names written as {__name__="..."}.
    names.update(re.findall(r'__name__\s*=~?\s*"([^"]+)"', expr))
    return names

def walk(panels):
    for p in panels:
        yield p
        yield from walk(p.get("panels", []))

queries = []  # (where, expr)
for p in walk(dashboard.get("panels", [])):
    title = p.get("title", "(untitled)")
    for t in p.get("targets", []):
        expr = t.get("expr")
        if expr is None:
            errors.append(f'panel "{title}" (id {p.get("id")}): target {t.get("refId")} has no expr')
            continue
        queries.append((f'panel "{title}" (id {p.get("id")}) target {t.get("refId")}', expr))
variables = dashboard.get("templating", {}).get("list", [])
for v in variables:
    if v.get("type") == "query":
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        m = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", q or "")
        queries.append((f'template variable "{v.get("name")}"', m.group(1) if m else (q or "")))
if not any(v.get("type") == "datasource" and v.get("query") == "prometheus" for v in variables):
    errors.append(f"{dashboard_path}: no template variable of type datasource (prometheus)")
if not queries:
    errors.append(f"{dashboard_path}: no panel queries found")

for where, expr in queries:
    unknown = sorted(n for n in metric_names(expr) if n not in exported)
    if unknown:
        errors.append(f"{where}: metric(s) {', '.join(unknown)} not registered in {metrics_cc}: {expr}")

# The panel queries as recording rules, for promtool to parse (variables get sample values).
samples = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h"}
with open(rules_out, "w") as out:
    out.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, (where, expr) in enumerate(queries):
        e = re.sub(r"\$\{?(\w+)\}?", lambda m: samples.get(m.group(1), ".*"), expr)
        out.write(f"      - record: dashboard:query_{i}\n        expr: {json.dumps(e)}\n")
with open(rules_out + ".where", "w") as out:
    out.write("\n".join(w for w, _ in queries) + "\n")

print(f"{len(alerts)} alerts with runbooks, {len(queries)} dashboard queries over "
      f"{len(exported)} exported metrics")
if errors:
    for e in errors:
        print(f"check-alerts: {e}", file=sys.stderr)
    sys.exit(1)
PY
  failed+=("runbooks and metric names")

echo "== PromQL of the dashboard's queries (promtool check rules)"
if [ ! -s "$tmp/dashboard_rules.yml" ]; then
  failed+=("dashboard PromQL (no queries to check)")
elif promtool check rules "$tmp/dashboard_rules.yml" >"$tmp/promtool.out" 2>&1; then
  sed -n 's/^  SUCCESS: /  SUCCESS: dashboard queries: /p' "$tmp/promtool.out"
else
  cat "$tmp/promtool.out" >&2
  # promtool names a failing query by its recording rule, dashboard:query_N: name its panel.
  grep -o 'dashboard:query_[0-9]*' "$tmp/promtool.out" | grep -o '[0-9]*$' | sort -un |
    while read -r n; do
      echo "check-alerts: not valid PromQL: $(sed -n "$((n + 1))p" "$tmp/dashboard_rules.yml.where")" >&2
    done
  failed+=("dashboard PromQL")
fi

if [ ${#failed[@]} -gt 0 ]; then
  printf 'check-alerts: FAILED: %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "check-alerts: OK"
