"""Generic AWS rest-json protocol machinery, driven by a botocore service model."""
