"""Fakes of components' collaborators, shared by the unit tests of several components.

A fake used by one test module only stays in that module; the clock every suite uses is in
``tests/fakes.py``.
"""
