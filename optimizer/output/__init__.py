"""Rendering a result directory: the HTML report and the Excel workbook."""
