"""Lynx results: a batch's runs as columns, the study's summary, the runs table and the HTML report."""
