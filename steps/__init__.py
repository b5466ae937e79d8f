"""Step glue: each step reads like its Gherkin line and calls one function of popek.checks.

Modules here are registered as pytest plugins by popek.plugin (so their steps and fixtures are seen by
every feature); `test_*.py` modules only bind the feature folders with pytest-bdd's scenarios().
"""
