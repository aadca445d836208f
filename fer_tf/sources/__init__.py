"""Where examples come from: one module per source (spreadsheets of URLs and their downloader)."""
