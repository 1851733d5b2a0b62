"""Signed e-passes ("one person, one code"): COSE_Sign1 over CWT claims, base45 in a QR.

See ../shared/design/passes.md for the format and docs/device-api.md for the device verify API.
"""
