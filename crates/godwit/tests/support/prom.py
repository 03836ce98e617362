"""Parses a Prometheus text page on stdin with the reference client's parser and prints its
samples as JSON: [[name, {label: value}, value], ...]. A page the parser refuses fails."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

samples = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        samples.append([s.name, s.labels, s.value])
print(json.dumps(samples))
