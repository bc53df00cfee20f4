"""One offline HTML report of the loan-recovery analysis, read from the built DuckDB file.

A package by job, so each part reads at once and a new chart has one obvious
place. Data flows one way, and only the first step touches the database:

- ``database``: the read-only connection, the ``--db`` checks and
  ``REPORT_RELATIONS`` (exactly what the report reads);
- ``queries``: every DuckDB query, into one small
  :class:`~loan_recovery.report.queries.ReportData` (exact aggregates, a
  deterministic sample for point clouds, ``main.run_settings``, the optional
  ``build_info`` row);
- ``facts``: the header's facts, each with its source (build, thresholds,
  the score in use, the outcome model's status), from ReportData;
- ``style``: the template, colours, category order and labelled lines every
  chart shares;
- ``book_charts``: the write-up's four exploratory charts of the loan book;
- ``model_charts``: segment profiles, risk score distribution and strategies
  per segment;
- ``model_card``: the model card (every score, AUC intervals, what they
  mean) and the rates by gender;
- ``decision_charts``: gains, calibration, policy comparison, reason codes
  and capacity use;
- ``page``: the chart list (order, parts, headings, questions), the HTML
  page and :func:`write_report`.

The figure builders are pure (ReportData in, plotly figure out), so the tests
check every chart against SQL over the same file. Adding a chart: a function
``def x_figure(data: ReportData) -> go.Figure`` in the chart module of its
part (a new query, if any, goes into ``queries`` and ReportData),
then one ``Chart`` entry in ``page.CHARTS``.
"""

from loan_recovery.report.page import ReportTargetError, default_report_path, write_report
from loan_recovery.report.queries import ReportError

__all__ = ["ReportError", "ReportTargetError", "default_report_path", "write_report"]
