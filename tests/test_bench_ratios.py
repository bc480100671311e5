"""The benchmark ratio table (benchmarks/ratios.py) from a pytest-benchmark JSON."""

from benchmarks.ratios import ratios


def _bench(op, kind, median):
    return {"extra_info": {"op": op, "kind": kind, "size": "s"}, "stats": {"median": median}}


def test_ratios_flag_missed_targets():
    data = {
        "benchmarks": [
            _bench("a", "reference-fwd+bwd", 3.0),
            _bench("a", "torch-fwd+bwd", 1.0),
            _bench("a", "reference-fwd", 2.0),
            _bench("a", "onnx-reference-fwd", 1.0),
            _bench("b", "reference-fwd+bwd", 1.0),
            _bench("b", "torch-fwd+bwd", 1.0),
            _bench("b", "reference-fwd", 1.0),
            _bench("b", "onnx-reference-fwd", 4.0),
        ]
    }
    rows = {r[0]: r for r in ratios(data)}
    assert rows["a"][4] == "3.00 (misses 1.5)" and rows["a"][5] == "0.50 (reference slower)"
    assert rows["b"][4] == "1.00" and rows["b"][5] == "4.00"
