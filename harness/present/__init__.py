"""Views of results: the table and report, charts, repeat, compare, recommend."""
