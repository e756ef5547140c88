"""Regenerate model_zoo/cost_table.json: every zoo variant traced at two class counts, so a first `edgefit select`
needs no tracing (and no torch) for any class count between them.

    .venv/bin/python model_zoo/make_cost_table.py

Every statistic the cost model reads is either independent of the class count (the body of the network) or
linear in it (the classifier: its MACs, weights, output channels and output elements), so two traces give any
count in between exactly; costs.table_stats derives it and refuses a variant whose peak activation memory moved
between the two counts (then it is traced). tests/test_costs.py pins the table to the tracer.
"""
from __future__ import annotations

import json
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgefit import zoo  # noqa: E402
from edgefit.costs import COST_MODEL_VERSION, TABLE_CLASSES, TABLE_PATH, TABLE_SCHEMA  # noqa: E402
from edgefit.trace import measure_variants  # noqa: E402


def main() -> None:
    lo, hi = TABLE_CLASSES
    low = measure_variants(zoo.variants(), lo)
    high = measure_variants(zoo.variants(), hi)
    table = {"schema": TABLE_SCHEMA, "catalog": zoo.catalog_digest(), "cost_model_version": COST_MODEL_VERSION,
             "torch": metadata.version("torch"), "timm": metadata.version("timm"), "classes": [lo, hi],
             "variants": {v.name: {str(lo): low[v.name].to_dict(), str(hi): high[v.name].to_dict()}
                          for v in zoo.variants()}}
    TABLE_PATH.write_text(json.dumps(table, separators=(",", ":"), sort_keys=True) + "\n")
    print(f"wrote {TABLE_PATH} ({len(table['variants'])} variants, {TABLE_PATH.stat().st_size / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
