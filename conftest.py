# The conformance plugin: --adapter, the impl fixture and results records (conformance/plugin.py).
pytest_plugins = ["conformance.plugin"]
