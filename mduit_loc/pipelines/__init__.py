"""Orchestration: the demo, the paper's Table 1 and the Nordland check, stage by stage.

Every stage calls the typed Python API of the package that does the work (``datasets.synthetic``,
``translation.api``, ``retrieval.netvlad.training``, ``retrieval.api``, ``evaluation``); nothing
here re-enters the command line. Modules: ``methods`` (what is compared and how queries are
localized), ``training`` (the same wall-clock budget for every method), ``stages`` (render,
localize, evaluate, submit; each skipped when its output exists), ``clock`` (stage headers and
timings), ``threads``, ``grids`` (translation grids), ``demo`` / ``demo_report``, ``table1``,
``nordland`` and the commands ``cli_demo`` / ``cli_table1`` (with ``cli_common``).
"""
