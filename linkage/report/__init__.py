"""Rendering of results for people: text summaries and self-contained HTML reports.

Takes result objects; never imports the secret or the partner encoder.
"""
