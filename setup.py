"""Shim for tools that call setup.py; all metadata lives in pyproject.toml."""

from setuptools import setup

setup()
