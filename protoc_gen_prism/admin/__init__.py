"""`prism admin`: a small server-rendered web application over a Prism deployment's state.

Each page reads its facts through the functions the `prism` commands already use (plan, provisioning dry
runs, the audit chain, the keyring); `sources/` holds one module per page that gathers them, `app.py` the
routes, `security.py` the token and CSRF rules. It never renders a PII value: the audit shows pseudonyms.
"""
