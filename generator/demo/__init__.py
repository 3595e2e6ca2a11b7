"""`p2pgen demo`: the example links run against the bundled demo APIs.

`command` is the demo command; `apis` serves the example specs on loopback
(`python -m generator.demo.apis`), built from `examples` (one class per API),
`http` (handler, faults) and `store` (SQLite, spec checks, seed data). Only the
`demo` command imports this package, so the generator itself never loads it.
"""
