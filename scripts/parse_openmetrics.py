#!/usr/bin/env python3
"""Parses an OpenMetrics document from stdin with the Prometheus Python client's parser
(`prometheus_client.openmetrics.parser`, PyPI package `prometheus-client`), which checks
exemplars strictly (syntax, label set length, placement). Exits 1 with the parser's message
if the document is refused; otherwise prints one JSON line per sample that has an exemplar:
{"name", "labels", "exemplar": {"labels", "value", "timestamp"}}."""
import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families

try:
    families = list(text_string_to_metric_families(sys.stdin.read()))
except Exception as error:  # the parser raises ValueError and others
    print(f"refused: {error!r}", file=sys.stderr)
    sys.exit(1)
for family in families:
    for sample in family.samples:
        if sample.exemplar is None:
            continue
        timestamp = sample.exemplar.timestamp
        print(json.dumps({
            "name": sample.name,
            "labels": sample.labels,
            "exemplar": {
                "labels": sample.exemplar.labels,
                "value": sample.exemplar.value,
                "timestamp": None if timestamp is None else float(timestamp),
            },
        }))
