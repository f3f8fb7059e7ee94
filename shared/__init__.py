"""Mission Control's vendored library: everything the functions share.

deploy.sh copies this package next to each function's main.py, so nothing here
may import from functions/ or from the repository root.
"""
