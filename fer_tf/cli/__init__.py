"""Thin command-line entry points: parse, build config, call one library function."""
