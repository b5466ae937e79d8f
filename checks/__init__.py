"""The plain library of popek: host probes, cloud actions, the local cloud, the quiz engine.

Nothing here reads argv, the environment or pytest's configuration: values come in as arguments
(like tempest.lib). Importable and useful without pytest.
"""
