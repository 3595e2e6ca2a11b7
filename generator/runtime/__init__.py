"""The runtime every generated script carries: real, linted, type-checked, tested code.

Each module holds top-level definitions that `generator.runtime_copy` copies
verbatim into a generated script, only those the link uses. So the code here
must not depend on being a package: names from sibling modules are imported by
name (the copy drops those imports, as the script defines them all), never as
`module.name`.
"""

RUNTIME_VERSION = "0.4"
