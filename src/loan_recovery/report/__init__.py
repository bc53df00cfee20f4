"""One offline HTML report of the loan-recovery analysis, read from the built DuckDB file.

A package by job, so each part reads at once and a new chart has one obvious
place. Data flows one way, and only the first step touches the database:

- ``queries``: the read-only connection and every DuckDB query, into one
  small :class:`~loan_recovery.report.queries.ReportData` (exact aggregates,
  a deterministic sample for point clouds, the thresholds from
  ``main.run_settings``, the optional ``build_info`` row);
- ``facts``: the header's build facts, each with its source, from ReportData;
- ``style``: the template, colours, category order and labelled lines every
  chart shares;
- ``book_charts``: the write-up's four exploratory charts of the loan book;
- ``model_charts``: segment profiles, risk score distribution and strategies
  per segment;
- ``model_card``: the model card (metrics, both AUCs, what they mean);
- ``page``: the chart list (order, headings, questions), the HTML page and
  :func:`write_report`.

The figure builders are pure (ReportData in, plotly figure out), so the tests
check every chart against SQL over the same file. Adding a chart: a function
``def x_figure(data: ReportData) -> go.Figure`` in ``book_charts`` or
``model_charts`` (a new query, if any, goes into ``queries`` and ReportData),
then one ``Chart`` entry in ``page.CHARTS``.
"""

from loan_recovery.report.page import default_report_path, write_report
from loan_recovery.report.queries import ReportError

__all__ = ["ReportError", "default_report_path", "write_report"]
