"""popek: conformance and quiz harness for the course "Virtualisation et OpenStack".

The library lives in `popek.checks` (repository folder `checks/`), the step glue in `popek.steps`
(`steps/`), the French Gherkin in `popek.features` (`features/`) and the quiz banks in
`popek.quizzes` (`quizzes/`). Only `popek.cli` and `popek.plugin` read settings.
"""

__version__ = "0.1.0"
