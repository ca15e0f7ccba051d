"""Scoring of localization results: ``metrics``, ``evaluate`` (recall per condition / camera, day /
night), ``submission`` (benchmark files), ``tables``, ``plots``, ``report``; the commands ``eval``
and ``submit``. Orchestration that produces results (demo, Table 1) is in ``mduit_loc.pipelines``."""
