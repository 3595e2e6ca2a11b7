"""One descriptor per kind of thing a mapping can choose, in a registry per kind.

Adding a kind (a pagination style, an auth kind) is one descriptor here and one
runtime class; the mapping reader, the checks, the build and `p2pgen init` read
the registry.
"""
