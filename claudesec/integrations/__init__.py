"""Optional adapters that put other frameworks' Claude calls through the audit pipeline.

Each lives in its own module behind an extra (``pip install claudesec[langchain]``) and is
imported only when asked for: ``import claudesec`` never loads a framework.
"""
