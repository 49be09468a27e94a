"""Palabre's shared templates (base pages, print base, components).

A package only so that they install with Palabre as ``palabre.templates``;
there is no code here.
"""
