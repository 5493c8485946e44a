"""/engine-rest/: a Camunda 7 compatible subset of the REST API, so existing Camunda clients run unchanged.

variables.py converts Camunda's typed variables; views.py answers with Camunda's JSON shapes, on our authentication
(token, `Bearer <token>`, or HTTP basic of the account) and our access rules. README: what is and is not covered.
"""
