"""Moving data in and out of Loudou as spreadsheets (CSV and XLSX)."""
