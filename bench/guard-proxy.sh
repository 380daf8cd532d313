#!/usr/bin/env bash
# What the guard proxy adds to a chat completion with a 4 KB answer: the same answer asked of
# a stub OpenAI-compatible upstream directly (the anchor: no proxy) and through
# `POST /v1/chat/completions` of the gateway (API key, limits, role check, input rail and
# input redaction on every message, canary, output rail on every field of the answer), over
# loopback HTTP, the two interleaved request by request. Whole answers: p50 and p99 of each
# and the difference. Streams: the answer in chunks of CHUNK characters, time to the last
# byte, and the difference per chunk.
# Usage: bench/guard-proxy.sh   (REQUESTS=500 CHUNK=5 RUNS=3 by default; prints each run's
# JSON, then the medians over the runs).
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS=${REQUESTS:-500}
CHUNK=${CHUNK:-5}
RUNS=${RUNS:-3}
cargo build --release --quiet -p rampart-serve --example guard_proxy_bench
B=$PWD/target/release/examples/guard_proxy_bench
W=$PWD/target/bench/guard-proxy
mkdir -p "$W"
for i in $(seq 1 "$RUNS"); do
  "$B" "$REQUESTS" "$CHUNK" > "$W/run-$i.json"
  cat "$W/run-$i.json"
done
python3 - "$W" "$RUNS" <<'PYEOF'
import json, statistics, sys
w, runs = sys.argv[1], int(sys.argv[2])
rs = [json.load(open(f"{w}/run-{i}.json")) for i in range(1, runs + 1)]
def med(f):
    return statistics.median(f(r) for r in rs)
for kind in ["whole", "stream"]:
    d50, d99 = med(lambda r: r[kind]["direct_ms"]["p50"]), med(lambda r: r[kind]["direct_ms"]["p99"])
    p50, p99 = med(lambda r: r[kind]["proxied_ms"]["p50"]), med(lambda r: r[kind]["proxied_ms"]["p99"])
    a50, a99 = med(lambda r: r[kind]["added_ms"]["p50"]), med(lambda r: r[kind]["added_ms"]["p99"])
    line = f"{kind:6} direct p50 {d50:.3f} ms p99 {d99:.3f} ms | proxied p50 {p50:.3f} ms p99 {p99:.3f} ms | added p50 {a50:.3f} ms p99 {a99:.3f} ms"
    if kind == "stream":
        c = rs[0]["stream"]["chunks"]
        line += f" | {c:.0f} chunks: added per chunk p50 {a50 * 1e3 / c:.1f} us p99 {a99 * 1e3 / c:.1f} us"
    print(line)
PYEOF
